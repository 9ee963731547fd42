// End-to-end test of the web page in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): start the real `vidi serve` with an API key, give the page
// the key it asks for (a wrong one first), upload a video (its encoding's progress bar fed by
// the registration's event stream), run a retrieval, and check the timeline, range playback
// and clip export.
//
//   node tests/browser/timeline.spec.mjs --vidi build/src/vidi --model ../shared/golden/tiny-a \
//        --video ../shared/golden/synth.mp4 --out build
//
// With the tiny random-weight model the retrieval answer is noise (usually no range), so
// the test checks that the timeline shows exactly the ranges the API returned, then marks
// a range by hand to check drawing, playback and export. Exit status 0 on success.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { runTest, startServe } from "../support/vidi_serve.mjs";

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback !== undefined) return fallback;
  throw new Error(`missing --${name}`);
};
const vidi = path.resolve(arg("vidi"));
const model = path.resolve(arg("model"));
const video = path.resolve(arg("video"));
const outDir = path.resolve(arg("out", "."));
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
const TOTAL_LIMIT_MS = 240_000;
const API_KEY = "browser-test-key";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "vidi-browser-"));
let server = null;
let context = null;

function log(msg) { console.log(`[timeline] ${msg}`); }

async function startServer() {
  server = await startServe(vidi, ["--model", model, "--max-new-tokens", "16",
    "--cache-dir", path.join(tmp, "cache"), "--api-key", API_KEY]);
  return server.port;
}

async function main() {
  const port = await startServer();
  const base = `http://127.0.0.1:${port}`;
  log(`server on ${base}`);

  context = await chromium.launchPersistentContext(path.join(tmp, "profile"), {
    executablePath: chromiumPath,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--autoplay-policy=no-user-gesture-required"],
    viewport: { width: 1100, height: 900 },
    acceptDownloads: true,
  });
  context.setDefaultTimeout(120_000);
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => { throw new Error(`page error: ${e.message}`); });

  await page.goto(base + "/");
  // The server wants a key: the page asks for it, and again after a wrong one.
  await page.waitForSelector("#key-card:not([hidden])");
  await page.fill("#key", "not-the-key");
  await page.click("#key-form button");
  await page.waitForFunction(() => document.getElementById("key-status").textContent.includes("refused"));
  assert.equal(await page.isVisible("#key-card"), true);
  await page.fill("#key", API_KEY);
  await page.click("#key-form button");
  await page.waitForFunction(() => document.getElementById("model").textContent.length > 0);
  assert.equal(await page.isVisible("#key-card"), false);
  log(`page loaded with the key: ${await page.textContent("#model")}`);

  // Upload: choosing a file registers it (POST /v1/videos as an event stream: progress, then
  // the video) and enables the question.
  const registered = page.waitForResponse((r) => r.url().endsWith("/v1/videos") && r.request().method() === "POST");
  await page.setInputFiles("#file", video);
  const stream = await registered;
  assert.equal(stream.headers()["content-type"], "text/event-stream");
  const events = (await stream.text()).split("\n\n").filter((b) => b.includes("data: ")).map((b) => ({
    name: (b.match(/^event: (.*)$/m) || [])[1],
    data: JSON.parse(b.match(/^data: (.*)$/m)[1]),
  }));
  const progress = events.filter((e) => e.name === "progress");
  const reg = events.find((e) => e.name === "video")?.data;
  assert.ok(reg && reg.id, `registration failed: ${JSON.stringify(events)}`);
  assert.ok(progress.length >= 1, "no progress event before the video");
  const lastFrames = progress.filter((e) => e.data.frames).pop();
  assert.ok(lastFrames, `no frames in the progress: ${JSON.stringify(progress)}`);
  assert.equal(lastFrames.data.frames.total, reg.frames);
  await page.waitForSelector("#run:not([disabled])");
  assert.equal(await page.isVisible("#player-card"), true);
  // The progress bar: full, fed by the events, the last report under it.
  assert.equal(await page.isVisible("#encode-progress"), true);
  assert.equal(await page.$eval("#encode-progress", (p) => p.value), 1);
  assert.ok(Number(await page.$eval("#encode-progress", (p) => p.dataset.events)) >= 1);
  const label = await page.textContent("#encode-label");
  assert.ok(label.includes(`frames ${lastFrames.data.frames.done}/${reg.frames}`), `progress label "${label}"`);
  const duration = reg.duration;
  log(`registered ${reg.id}: ${duration} s, ${reg.frames} frames, ${progress.length} progress events ("${label}")`);

  // The player loads the uploaded file from the server.
  await page.waitForFunction(() => document.getElementById("player").readyState >= 1, null, { timeout: 30_000 });
  const playerDuration = await page.$eval("#player", (v) => v.duration);
  assert.ok(Math.abs(playerDuration - duration) < 0.1, `player duration ${playerDuration} vs ${duration}`);

  // Retrieval.
  await page.fill("#question", "a moving colour pattern");
  await page.selectOption("#task", "retrieval");
  const answered = page.waitForResponse((r) => r.url().includes(`/v1/videos/${reg.id}/query`));
  await page.click("#run");
  const answer = await (await answered).json();
  assert.ok(Array.isArray(answer.ranges), `bad answer: ${JSON.stringify(answer)}`);
  await page.waitForSelector("#result:not([hidden])");
  log(`answer: "${answer.answer}" (${answer.ranges.length} ranges; model text ${JSON.stringify(answer.text.slice(0, 40))})`);

  // The timeline shows exactly the returned ranges.
  assert.equal(await page.isVisible("#timeline"), true);
  assert.equal(await page.locator("#timeline .range-block").count(), answer.ranges.length);
  const shown = await page.textContent("#answer");
  assert.ok(shown.startsWith(answer.answer || "(no time range found)"), `answer text "${shown}"`);

  // A range marked by hand: drawn at the right place, plays on click, exports a clip.
  await page.fill("#range-input", "00:00:02-00:00:05.5");
  await page.click("#range-form button");
  const blocks = page.locator("#timeline .range-block");
  assert.equal(await blocks.count(), answer.ranges.length + 1);
  const block = blocks.last();
  const left = await block.evaluate((b) => parseFloat(b.style.left));
  const width = await block.evaluate((b) => parseFloat(b.style.width));
  assert.ok(Math.abs(left - (100 * 2) / duration) < 0.01, `left ${left}%`);
  assert.ok(Math.abs(width - (100 * 3.5) / duration) < 0.01, `width ${width}%`);
  await block.click();
  await page.waitForFunction(() => {
    const v = document.getElementById("player");
    return v.currentTime >= 1.99 && v.currentTime <= 5.6;
  }, null, { timeout: 20_000 });
  log(`clicked range -> player at ${await page.$eval("#player", (v) => v.currentTime.toFixed(2))} s`);

  const href = await page.locator("#ranges .clip-link").last().getAttribute("href");
  assert.equal((await page.request.get(base + href)).status(), 401);  // the link alone is not enough
  const clip = await page.request.get(base + href, { headers: { Authorization: `Bearer ${API_KEY}` } });
  assert.equal(clip.status(), 200);
  assert.equal(clip.headers()["content-type"], "video/mp4");
  assert.ok((await clip.body()).length > 1000, "clip too small");
  assert.equal(Number(clip.headers()["x-clip-start"]), 0);  // synth.mp4's keyframe before 2 s

  // The page's own export fetches the clip with the key and saves it.
  const download = page.waitForEvent("download");
  await page.locator("#ranges .clip-link").last().click();
  const saved = await (await download).path();
  assert.ok(fs.statSync(saved).size > 1000, "downloaded clip too small");

  const shot = path.join(outDir, "browser-timeline.png");
  await page.screenshot({ path: shot, fullPage: true });
  log(`screenshot: ${shot}`);
}

await runTest("timeline", main, {
  limitMs: TOTAL_LIMIT_MS,
  server: () => server,
  cleanup: async () => { if (context) await context.close().catch(() => {}); },
  after: () => fs.rmSync(tmp, { recursive: true, force: true }),
});
