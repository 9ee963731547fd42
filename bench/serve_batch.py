#!/usr/bin/env python3
"""`vidi serve` with many clients asking about one registered video (issue 19).

Starts the server, registers the video once (its encode is timed), then sends the same N
questions one by one and then from N concurrent clients (the server decodes them as one
batch): total time, per-request latency (min / median / max) and, for the concurrent
clients, whether every answer has the token ids of the same question asked alone. Then the
same N questions as concurrent streamed chat completions (the OpenAI-compatible endpoint):
time to the first token and to the end. Python's standard library only.

  python3 bench/serve_batch.py --vidi "sh .dev/vidi-run vidi" --model DIR --video FILE \\
      [--backend cuda] [--questions 16] [--tokens 20] [--json OUT]
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

QUERIES = [
    "a person laughing", "the product close-up", "the logo", "a car drives past", "someone opens a door",
    "a dog runs across the room", "people shaking hands", "a close-up of a face", "text on the screen",
    "a crowd applauds", "someone pours a drink", "the sun sets", "a child plays with a ball",
    "hands typing on a keyboard", "a phone rings", "the camera pans across a city",
]


def request(base, method, path, body=None, headers=None, timeout=900):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if isinstance(body, (dict, list)):
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as res:
        return res.read()


def ask(base, vid, question, tokens):
    t0 = time.monotonic()
    a = json.loads(request(base, "POST", f"/v1/videos/{vid}/query",
                           {"question": question, "task": "retrieval", "max_new_tokens": tokens}))
    return time.monotonic() - t0, a


def stream_chat(base, model, vid, question, tokens):
    """A streamed chat completion: (seconds to the first content, seconds to [DONE], text)."""
    body = {"model": model, "stream": True, "max_tokens": tokens, "vidi": {"task": "retrieval"},
            "messages": [{"role": "user", "content": [{"type": "text", "text": question},
                                                      {"type": "video_url", "video_url": {"url": vid}}]}]}
    req = urllib.request.Request(base + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    first, text = None, ""
    with urllib.request.urlopen(req, timeout=900) as res:
        for raw in res:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            for c in chunk.get("choices", []):
                piece = c.get("delta", {}).get("content")
                if piece:
                    text += piece
                    if first is None:
                        first = time.monotonic() - t0
    return first or 0.0, time.monotonic() - t0, text


def concurrently(n, f):
    """f(i) for i < n on n threads released together; returns (wall seconds, results)."""
    results = [None] * n
    start = threading.Barrier(n + 1)

    def run(i):
        start.wait()
        results[i] = f(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.monotonic()
    for t in threads:
        t.join()
    return time.monotonic() - t0, results


def spread(xs):
    return f"min {min(xs):.3f} / median {statistics.median(xs):.3f} / max {max(xs):.3f} s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vidi", required=True, help="command that runs vidi, e.g. 'sh .dev/vidi-run vidi'")
    ap.add_argument("--model", required=True)
    ap.add_argument("--video", required=True)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--questions", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--port", type=int, default=8124)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    n = min(args.questions, len(QUERIES))
    video = os.path.abspath(args.video)
    base = f"http://127.0.0.1:{args.port}"
    cmd = shlex.split(args.vidi) + ["serve", "--model", args.model, "--backend", args.backend, "--port",
                                    str(args.port), "--no-disk-cache", "--media-root", os.path.dirname(video),
                                    "--max-batch", str(n), "--max-new-tokens", str(args.tokens)]
    log = open("/tmp/vidi-serve-batch.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                health = json.loads(request(base, "GET", "/health", timeout=2))
                break
            except OSError:
                time.sleep(0.5)
        else:
            sys.exit("the server did not come up (see /tmp/vidi-serve-batch.log)")
        model = health["model"]
        t0 = time.monotonic()
        reg = json.loads(request(base, "POST", "/v1/videos", f"video_path={video}".encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"}))
        print(f"registered {reg['id']}: {reg['visual_tokens']} visual + {reg['audio_tokens']} audio tokens, "
              f"{time.monotonic() - t0:.2f} s ({reg['timings']['video_cache']})")
        vid = reg["id"]
        ask(base, vid, QUERIES[0], args.tokens)  # warm-up

        t0 = time.monotonic()
        alone = [ask(base, vid, QUERIES[i], args.tokens) for i in range(n)]
        alone_s = time.monotonic() - t0
        together_s, together = concurrently(n, lambda i: ask(base, vid, QUERIES[i], args.tokens))
        same = sum(together[i][1]["token_ids"] == alone[i][1]["token_ids"] for i in range(n))
        print(f"{n} requests one by one:     total {alone_s:.3f} s, latency {spread([a[0] for a in alone])}")
        print(f"{n} concurrent clients:      total {together_s:.3f} s = {alone_s / together_s:.2f}x faster, "
              f"latency {spread([t[0] for t in together])}")
        print(f"concurrent answers with the ids of the request alone: {same}/{n}")

        chat_s, chats = concurrently(n, lambda i: stream_chat(base, model, vid, QUERIES[i], args.tokens))
        same_text = sum(chats[i][2] == alone[i][1]["text"] for i in range(n))
        print(f"{n} concurrent streamed chat completions: total {chat_s:.3f} s, first token "
              f"{spread([c[0] for c in chats])}, end {spread([c[1] for c in chats])}; text as alone {same_text}/{n}")
        metrics = request(base, "GET", "/metrics").decode()
        for line in metrics.splitlines():
            if line.startswith(("vidi_batch_steps_total", "vidi_decode_tokens_total", "vidi_decode_seconds_total",
                                "vidi_gpu_memory_bytes", "vidi_gpu_memory_limit_bytes")):
                print("  " + line)
        out = {"questions": n, "tokens": args.tokens, "alone_total_s": alone_s,
               "alone_latency_s": [a[0] for a in alone], "concurrent_total_s": together_s,
               "concurrent_latency_s": [t[0] for t in together], "ids_equal": same,
               "chat_total_s": chat_s, "chat_first_token_s": [c[0] for c in chats],
               "chat_end_s": [c[1] for c in chats], "chat_text_equal": same_text}
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=2)
        return 0 if same == n and same_text == n else 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        print(f"server exit {server.returncode}")


if __name__ == "__main__":
    sys.exit(main())
