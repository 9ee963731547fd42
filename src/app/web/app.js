// The vidi page: register a video (upload or server path) once, with a progress bar while
// the server decodes and encodes it (the registration's event stream), ask questions about
// it, draw retrieved ranges on a timeline under the player, play or export each range.
// A server started with --api-key answers 401: the page then asks for the key once, keeps
// it for the tab (sessionStorage) and sends it with every request, the video's too (the
// player and clip downloads fetch with the header and play or save the bytes as a blob).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { id: null, duration: 0, ranges: [], stopAt: null, videoUrl: null };
const KEY_ITEM = "vidi-api-key";
const apiKey = () => sessionStorage.getItem(KEY_ITEM);

function setStatus(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// Shows the key form; resolves once a key was typed.
function askForKey(message) {
  return new Promise((resolve) => {
    $("key-card").hidden = false;
    setStatus($("key-status"), message, true);
    $("key-form").onsubmit = (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY_ITEM, $("key").value.trim());
      $("key").value = "";
      $("key-card").hidden = true;
      resolve();
    };
    $("key").focus();
  });
}

// fetch() with the key; on 401 asks for a (new) key and tries again.
async function authedFetch(url, options = {}) {
  for (;;) {
    const headers = { ...(options.headers || {}) };
    if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
    const res = await fetch(url, { ...options, headers });
    if (res.status !== 401) return res;
    await askForKey(apiKey() ? "The server refused this key; type it again." : "This server needs an API key.");
  }
}

// Fetches JSON; throws Error(message from the server's {"error": ...}) on failure.
async function api(url, options) {
  const res = await authedFetch(url, options);
  let body = null;
  try { body = await res.json(); } catch (_) { /* not JSON */ }
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
  return body;
}

// Reads a server-sent event stream from a fetch() response, calling onEvent(name, data) for
// each event (comments, the server's keep-alives, are skipped).
async function readEvents(res, onEvent) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) onEvent(name, data);
    }
  }
}

// The encoding's progress: decoded frames (the bar), encoded tokens and the time left.
function showProgress(p) {
  const bar = $("encode-progress");
  bar.dataset.events = String(Number(bar.dataset.events || 0) + 1);
  const frames = p.frames, tokens = p.tokens;
  const parts = [];
  if (frames && frames.total > 0) {
    bar.value = frames.done / frames.total;
    parts.push(`frames ${frames.done}/${frames.total}`);
  }
  if (tokens && tokens.total > 0) parts.push(`tokens ${tokens.done}/${tokens.total}`);
  if (p.audio && p.audio.total > 0) parts.push(`audio ${p.audio.done}/${p.audio.total}`);
  if (typeof p.eta_s === "number" && frames && frames.done < frames.total) parts.push(`about ${Math.ceil(p.eta_s)} s left`);
  $("encode-label").textContent = parts.join(" · ");
}

// POST /v1/videos as an event stream: progress events, then the registration ("video").
async function registerVideo(form) {
  const res = await authedFetch("/v1/videos", { method: "POST", body: form, headers: { Accept: "text/event-stream" } });
  if (!res.ok) {
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    throw new Error((body && body.error) || `HTTP ${res.status}`);
  }
  let video = null, failure = null;
  await readEvents(res, (name, data) => {
    const j = JSON.parse(data);
    if (name === "progress") showProgress(j);
    else if (name === "video") video = j;
    else if (name === "error") failure = j.error;
  });
  if (failure || !video) throw new Error(failure || "the server ended the stream without a video");
  return video;
}

function timestamp(seconds) {
  const cs = Math.floor(seconds * 100 + 1e-6);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(Math.floor(cs / 360000))}:${pad(Math.floor(cs / 6000) % 60)}:${pad(Math.floor(cs / 100) % 60)}.${pad(cs % 100)}`;
}

async function loadVideo() {
  const file = $("file").files[0];
  const path = $("path").value.trim();
  if (!file && !path) { setStatus($("video-status"), "Choose a file or type a path.", true); return; }
  const form = new FormData();
  if (file) form.append("video", file, file.name); else form.append("video_path", path);
  if (state.id) authedFetch(`/v1/videos/${state.id}`, { method: "DELETE" }).catch(() => {});
  state.id = null;
  $("run").disabled = true;
  $("load").disabled = true;
  setStatus($("video-status"), "Uploading and encoding…");
  $("encode-progress").value = 0;
  $("encode-progress").dataset.events = "0";
  $("encode-label").textContent = "";
  $("encode").hidden = false;
  try {
    const v = await registerVideo(form);
    state.id = v.id;
    state.duration = v.duration;
    setStatus($("video-status"),
      `${v.name}: ${v.duration.toFixed(2)} s, ${v.frames} frames, ${v.visual_tokens + v.audio_tokens} media tokens ` +
      `(${v.timings.video_cache}, ${v.timings.total_s.toFixed(2)} s)`);
    await showVideo(v.id);
    $("duration-label").textContent = timestamp(v.duration);
    $("player-card").hidden = false;
    drawRanges([]);
    $("run").disabled = false;
    $("encode-progress").value = 1;  // stays, full, with the last report under it
  } catch (e) {
    setStatus($("video-status"), e.message, true);
    $("encode").hidden = true;
  } finally {
    $("load").disabled = false;
  }
}

// The player's source: the file URL itself when no key is needed (the browser streams it
// with Range requests), else the bytes fetched with the key, as a blob.
async function showVideo(id) {
  const url = `/v1/videos/${id}/file`;
  if (state.videoUrl) URL.revokeObjectURL(state.videoUrl);
  state.videoUrl = null;
  if (!apiKey()) { $("player").src = url; return; }
  const res = await authedFetch(url);
  if (!res.ok) throw new Error(`cannot load the video (HTTP ${res.status})`);
  state.videoUrl = URL.createObjectURL(await res.blob());
  $("player").src = state.videoUrl;
}

// A clip link saves the clip; with a key the link's URL is fetched with it and saved from a blob.
async function downloadClip(ev) {
  if (!apiKey()) return;  // the plain link works
  ev.preventDefault();
  const res = await authedFetch(ev.currentTarget.href);
  if (!res.ok) { setStatus($("range-status"), `clip export failed (HTTP ${res.status})`, true); return; }
  const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await res.blob());
  a.download = name ? name[1] : "clip";
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

// "HH:MM:SS.ss", "MM:SS" or plain seconds -> seconds (NaN when malformed).
function parseTime(text) {
  const parts = text.trim().split(":");
  if (parts.length > 3 || parts.some((p) => !/^\d+(\.\d+)?$/.test(p))) return NaN;
  return parts.reduce((acc, p) => acc * 60 + Number(p), 0);
}

// A range typed by the user ("start-end"): drawn like the model's, to play or export.
function markRange(ev) {
  ev.preventDefault();
  const [a, b, extra] = $("range-input").value.split("-");
  const start = parseTime(a || ""), end = parseTime(b || "");
  if (extra !== undefined || !(start >= 0) || !(end > start) || end > state.duration + 0.01) {
    setStatus($("range-status"), `Type start-end within 0-${state.duration.toFixed(2)} s.`, true);
    return;
  }
  setStatus($("range-status"), "");
  drawRanges([...state.ranges, { start, end }]);
}

function drawRanges(ranges) {
  state.ranges = ranges;
  $("ranges-card").hidden = ranges.length === 0;
  const timeline = $("timeline");
  timeline.querySelectorAll(".range-block").forEach((b) => b.remove());
  const list = $("ranges");
  list.replaceChildren();
  const total = state.duration || 1;
  ranges.forEach((r, i) => {
    const block = document.createElement("div");
    block.className = "range-block";
    block.dataset.index = i;
    block.style.left = `${(100 * Math.max(0, r.start)) / total}%`;
    block.style.width = `${(100 * Math.max(0, Math.min(r.end, total) - r.start)) / total}%`;
    block.title = `${timestamp(r.start)} – ${timestamp(r.end)}`;
    block.addEventListener("click", (ev) => { ev.stopPropagation(); playRange(i); });
    timeline.appendChild(block);

    const item = document.createElement("li");
    const time = document.createElement("span");
    time.className = "range-time";
    time.textContent = `${timestamp(r.start)}-${timestamp(r.end)}`;
    time.addEventListener("click", () => playRange(i));
    const clip = document.createElement("a");
    clip.className = "clip-link";
    clip.href = `/v1/videos/${state.id}/clip?start=${r.start}&end=${r.end}`;
    clip.download = "";
    clip.textContent = "export clip";
    clip.addEventListener("click", downloadClip);
    item.append(time, clip);
    list.appendChild(item);
  });
}

function playRange(i) {
  const r = state.ranges[i];
  const player = $("player");
  document.querySelectorAll(".range-block").forEach((b) => b.classList.toggle("active", Number(b.dataset.index) === i));
  state.stopAt = r.end;
  player.currentTime = r.start;
  player.play().catch(() => {});
}

async function ask(ev) {
  ev.preventDefault();
  if (!state.id) return;
  const body = { question: $("question").value, task: $("task").value };
  $("run").disabled = true;
  setStatus($("query-status"), "Thinking…");
  try {
    const a = await api(`/v1/videos/${state.id}/query`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    $("answer").textContent = a.answer || (a.task === "retrieval" ? "(no time range found)" : "(empty answer)");
    if (a.task === "retrieval" && a.text && !a.answer) $("answer").textContent += `\nmodel output: ${a.text}`;
    drawRanges(a.ranges);
    const t = a.timings;
    $("timings").textContent =
      `video ${t.video_cache} ${t.video_s.toFixed(2)} s · prefill ${t.prefill_s.toFixed(2)} s · ` +
      `generate ${t.generate_s.toFixed(2)} s (${t.generated_tokens} tokens) · total ${t.total_s.toFixed(2)} s`;
    $("result").hidden = false;
    setStatus($("query-status"), "");
  } catch (e) {
    setStatus($("query-status"), e.message, true);
  } finally {
    $("run").disabled = false;
  }
}

function init() {
  $("load").addEventListener("click", loadVideo);
  $("file").addEventListener("change", () => { if ($("file").files.length) { $("path").value = ""; loadVideo(); } });
  $("query-form").addEventListener("submit", ask);
  $("range-form").addEventListener("submit", markRange);
  const player = $("player");
  player.addEventListener("timeupdate", () => {
    const total = state.duration || player.duration || 1;
    $("playhead").style.left = `${(100 * player.currentTime) / total}%`;
    if (state.stopAt !== null && player.currentTime >= state.stopAt) { player.pause(); state.stopAt = null; }
  });
  $("timeline").addEventListener("click", (ev) => {
    const rect = ev.currentTarget.getBoundingClientRect();
    player.currentTime = ((ev.clientX - rect.left) / rect.width) * (state.duration || player.duration || 0);
  });
  // The video list needs the key (when the server has one): asking for it asks for the key
  // first; /health names the model only to a client with the key.
  api("/v1/videos")
    .then(() => api("/health"))
    .then((h) => { $("model").textContent = `${h.model} · ${h.backend}`; })
    .catch((e) => setStatus($("video-status"), e.message, true));
}

init();
