// The official `openai` client (npm, pinned in package-lock.json) against the real `vidi serve`
// with the tiny test checkpoint: /v1/models, chat completions about a video given by its
// registered id, as a data: URL and as a path under --media-root, plain and streamed, several
// streams at once (one batch), and the errors the client raises. Every answer must be the one
// the native API gives for the same question (the same engine, the same greedy tokens).
//
//   node tests/openai/chat.spec.mjs --vidi build/src/vidi --model ../shared/golden/tiny-a \
//        --video ../shared/golden/synth.mp4
//
// Exit status 0 on success.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { runTest, startServe } from "../support/vidi_serve.mjs";

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  throw new Error(`missing --${name}`);
};
const vidi = path.resolve(arg("vidi"));
const model = path.resolve(arg("model"));
const video = path.resolve(arg("video"));
const MODEL_ID = path.basename(model);
const API_KEY = "openai-test-key";
const TOTAL_LIMIT_MS = 240_000;
const TOKENS = 12;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vidi-openai-"));
let server = null;

function log(msg) { console.log(`[openai] ${msg}`); }

// A user turn: the text and the video_url part (none for a text-only turn).
function messages(text, url) {
  const content = [{ type: "text", text }];
  if (url) content.push({ type: "video_url", video_url: { url } });
  return [{ role: "user", content }];
}

async function expectError(promise, cls, status, words) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert.equal(e.status, status);
    assert.ok(e.message.includes(words), `"${e.message}" lacks "${words}"`);
    return e;
  }
  throw new Error(`expected ${cls.name} (${status})`);
}

// The answer of the native API: POST /v1/videos/{id}/query.
async function nativeAnswer(base, id, question, task) {
  const res = await fetch(`${base}/v1/videos/${id}/query`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ question, task, max_new_tokens: TOKENS }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

// Streams a completion; returns the concatenated content, the last chunk with a finish
// reason, and the usage chunk.
async function streamed(client, params) {
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  let content = "", final = null, usage = null, first = null;
  for await (const chunk of stream) {
    first ??= chunk;
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta?.content) content += choice.delta.content;
    if (choice.finish_reason) final = chunk;
  }
  assert.equal(first.choices[0].delta.role, "assistant");
  return { content, final, usage };
}

async function main() {
  server = await startServe(vidi, ["--model", model, "--max-new-tokens", "32", "--api-key", API_KEY,
    "--cache-dir", path.join(tmp, "cache"), "--media-root", path.dirname(video)]);
  const base = `http://127.0.0.1:${server.port}`;
  const client = new OpenAI({ apiKey: API_KEY, baseURL: `${base}/v1`, maxRetries: 0, timeout: 120_000 });
  log(`server on ${base}`);

  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [MODEL_ID]);
  assert.equal((await client.models.retrieve(MODEL_ID)).id, MODEL_ID);

  // A registered video (the native API), and the native answers to compare with.
  const form = new FormData();
  form.append("video", new Blob([fs.readFileSync(video)], { type: "video/mp4" }), "synth.mp4");
  const reg = await (await fetch(`${base}/v1/videos`, {
    method: "POST", body: form, headers: { Authorization: `Bearer ${API_KEY}` },
  })).json();
  assert.ok(reg.id, JSON.stringify(reg));
  const query = "a moving colour pattern";
  const ref = await nativeAnswer(base, reg.id, query, "retrieval");
  log(`native answer: ${JSON.stringify(ref.text)} (${ref.timings.generated_tokens} tokens)`);

  // Not streamed: the same text, tokens and ranges; the ranges in the `vidi` field.
  const params = { model: MODEL_ID, messages: messages(query, reg.id), max_tokens: TOKENS, vidi: { task: "retrieval" } };
  const done = await client.chat.completions.create(params);
  assert.equal(done.object, "chat.completion");
  assert.equal(done.model, MODEL_ID);
  assert.equal(done.choices[0].message.role, "assistant");
  assert.equal(done.choices[0].message.content, ref.text);
  assert.equal(done.usage.completion_tokens, ref.timings.generated_tokens);
  assert.equal(done.choices[0].finish_reason, ref.timings.generated_tokens >= TOKENS ? "length" : "stop");
  assert.equal(done.vidi.task, "retrieval");
  assert.equal(done.vidi.video_id, reg.id);
  assert.deepEqual(done.vidi.ranges, ref.ranges);
  assert.equal(done.vidi.answer, ref.answer);

  // Streamed: the deltas add up to the same text; the last chunk carries the `vidi` field.
  const s = await streamed(client, params);
  assert.equal(s.content, ref.text);
  assert.equal(s.final.choices[0].finish_reason, done.choices[0].finish_reason);
  assert.deepEqual(s.final.vidi.ranges, ref.ranges);
  assert.equal(s.usage.completion_tokens, ref.timings.generated_tokens);
  log(`streamed ${JSON.stringify(s.content)}`);

  // The video as a data: URL, and as a path under the media root: the same answers.
  const question = "What is shown?";
  const vqa = await nativeAnswer(base, reg.id, question, "vqa");
  const dataUrl = `data:video/mp4;base64,${fs.readFileSync(video).toString("base64")}`;
  for (const url of [dataUrl, video, `file://${video}`]) {
    const a = await client.chat.completions.create({ model: MODEL_ID, messages: messages(question, url), max_tokens: TOKENS });
    assert.equal(a.choices[0].message.content, vqa.text, url.slice(0, 40));
    assert.equal(a.vidi.task, "vqa");
    assert.equal(a.vidi.timings.video_cache, "memory");  // the same content, encoded once
  }

  // Several streams at once share one batch; each gets its own answer.
  const questions = ["Who is there?", "What colour is it?", "Is anything moving?", "Describe the video."];
  const alone = [];
  for (const q of questions) alone.push((await nativeAnswer(base, reg.id, q, "vqa")).text);
  const together = await Promise.all(questions.map((q) =>
    streamed(client, { model: MODEL_ID, messages: messages(q, reg.id), max_tokens: TOKENS })));
  together.forEach((t, i) => assert.equal(t.content, alone[i], questions[i]));
  log(`${questions.length} concurrent streams agree with the answers one by one`);

  // Errors, as the client raises them.
  const nf = await expectError(client.chat.completions.create({ ...params, model: "gpt-4o" }),
    OpenAI.NotFoundError, 404, "does not exist");
  assert.equal(nf.code, "model_not_found");
  await expectError(client.chat.completions.create({ ...params, max_tokens: 0 }), OpenAI.BadRequestError, 400, "max_tokens");
  await expectError(client.chat.completions.create({ ...params, stream: true, max_tokens: 1000 }),
    OpenAI.BadRequestError, 400, "max_tokens");
  await expectError(client.chat.completions.create({ ...params, messages: messages(query, "https://example.com/v.mp4") }),
    OpenAI.BadRequestError, 400, "remote URLs are not fetched");
  await expectError(client.chat.completions.create({ ...params, messages: messages(query, "/etc/passwd") }),
    OpenAI.BadRequestError, 400, "video not available");
  await expectError(client.chat.completions.create({ ...params, messages: messages(query, "0123456789abcdef") }),
    OpenAI.NotFoundError, 404, "unknown video id");
  const wrongKey = new OpenAI({ apiKey: "wrong", baseURL: `${base}/v1`, maxRetries: 0 });
  await expectError(wrongKey.models.list(), OpenAI.AuthenticationError, 401, "API key");
  await expectError(wrongKey.chat.completions.create(params), OpenAI.AuthenticationError, 401, "API key");
  log("errors: 404 model, 400 max_tokens (plain and streamed), 400 remote URL, 400 path outside the root, 404 id, 401 key");
}

await runTest("openai", main, {
  limitMs: TOTAL_LIMIT_MS,
  server: () => server,
  after: () => fs.rmSync(tmp, { recursive: true, force: true }),
});
