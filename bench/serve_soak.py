#!/usr/bin/env python3
"""Soak test of `vidi serve` on loopback: 16 clients for a few minutes send a mix of good
requests, bad files, oversized and chunked bodies, wrong keys, foreign Host headers,
cancelled connections, endless header lines, header floods, pipelined requests and uploads
trickled below the body's rate floor;
afterwards the server must answer, its RSS must have stayed under the stated bound, no
upload, clip or temporary file may be left, and every good request must have had the answer
a single client got before the load.

  python3 bench/serve_soak.py --vidi build/src/vidi --model ../shared/golden/tiny-a \
      --video ../shared/golden/synth.mp4 [--seconds 180] [--clients 16] [--rss-bound-mb 512]

Prints a Markdown table; exits 1 when a check fails. Standard library only.
"""
import argparse
import collections
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

KEY = "soak-key-" + uuid.uuid4().hex[:8]
QUESTIONS = {"upload": ("a moving colour pattern", "retrieval"),
             "path": ("What is shown?", "vqa"),
             "registered": ("where does the colour change?", "retrieval")}


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def is_busy(status, body):
    return status == 503 and isinstance(body, dict) and "busy" in body.get("error", "")


def answers(s):
    """The status codes of every answer that comes back on socket `s` until the server closes."""
    got = b""
    while True:
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            break
        if not d:
            break
        got += d
    return [int(c) for c in re.findall(rb"HTTP/1\.1 (\d{3}) ", got)]


def multipart(fields, file_field=None):
    boundary = "soak" + uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    if file_field:
        name, data = file_field
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="{name}"\r\n'
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


class Soak:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="vidi-soak-")
        self.root = os.path.join(self.tmp, "media")
        self.server_tmp = os.path.join(self.tmp, "server-tmp")  # the server's TMPDIR: its work dir
        self.cache = os.path.join(self.tmp, "cache")
        for d in (self.root, self.server_tmp, self.cache):
            os.makedirs(d)
        self.video_path = os.path.join(self.root, "synth.mp4")
        shutil.copy(a.video, self.video_path)
        with open(a.video, "rb") as f:
            self.video = f.read()
        self.text_file = b"".join(b"line %d of a text file, not a video\n" % i for i in range(300))
        self.lock = threading.Lock()
        # kind -> [sent, expected, unexpected, busy]; busy: 503 while --max-uploads uploads were
        # being received (a good request then retries until it is answered).
        self.counts = collections.defaultdict(lambda: [0, 0, 0, 0])
        self.failures = []
        self.rss_peak = 0

    # ---- server ----
    def start(self):
        env = dict(os.environ, TMPDIR=self.server_tmp)
        self.log = open(os.path.join(self.tmp, "serve.log"), "w+")
        self.proc = subprocess.Popen(
            [self.a.vidi, "serve", "--model", self.a.model, "--backend", "cpu", "--port", "0",
             "--max-new-tokens", "8", "--api-key", KEY, "--media-root", self.root, "--max-upload-mb", "2",
             "--upload-store-mb", "8", "--max-queue", "64", "--timeout-s", "600", "--cache-dir", self.cache],
            stdout=subprocess.PIPE, stderr=self.log, env=env, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if not m:
            raise SystemExit(f"vidi serve did not start: {line}")
        self.port = int(m.group(1))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -9

    # ---- requests ----
    def request(self, method, path, body=None, ctype=None, key=KEY, host=None, timeout=900):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Host": host or f"127.0.0.1:{self.port}"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if ctype:
            headers["Content-Type"] = ctype
        try:
            c.request(method, path, body=body, headers=headers)
            r = c.getresponse()
            data = r.read()
            try:
                return r.status, json.loads(data)
            except ValueError:
                return r.status, data
        finally:
            c.close()

    def good(self, kind):
        q, task = QUESTIONS[kind]
        if kind == "upload":
            body, ctype = multipart({"question": q, "task": task}, ("synth.mp4", self.video))
            return self.request("POST", "/inference", body, ctype)
        if kind == "path":
            return self.request("POST", "/inference", json.dumps({"question": q, "task": task, "video_path": self.video_path}),
                                "application/json")
        return self.request("POST", f"/v1/videos/{self.registered}/query", json.dumps({"question": q, "task": task}),
                            "application/json")

    def chunked(self, total):
        """A chunked upload past the limit; returns the status line's code (0: none)."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=120)
        boundary = "chunk" + uuid.uuid4().hex
        try:
            s.sendall((f"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                       f"Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: close\r\n\r\n").encode())
            head = (f'--{boundary}\r\nContent-Disposition: form-data; name="video"; filename="big.mp4"\r\n\r\n').encode()
            s.sendall(b"%x\r\n%s\r\n" % (len(head), head))
            piece = b"\0" * 65536
            for _ in range(total // len(piece)):
                s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            tail = f"\r\n--{boundary}--\r\n".encode()
            s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))
            data = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            return int(m.group(1)) if m else 0
        finally:
            s.close()

    def raw(self, *pieces, pause=0.0):
        """Sends `pieces` as they are, with `pause` seconds between them, stopping where the
        server answers or closes; then returns the status codes of every answer that came back
        before the server closed."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        try:
            try:
                for i, piece in enumerate(pieces):
                    if i and pause and select.select([s], [], [], pause)[0]:
                        break  # answered
                    s.sendall(piece)
            except OSError:  # refused part-way: the answer is already on its way
                pass
            return answers(s)
        finally:
            s.close()

    def trickle(self):
        """Uploads a video 100 bytes every half second (200 bytes/s, under the server's floor)
        until an answer comes; returns the status codes of what came back."""
        body, ctype = multipart({"question": "q"}, ("slow.mp4", self.video))
        head = (f"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        return self.raw(head, *(body[at:at + 100] for at in range(0, len(body), 100)), pause=0.5)

    def cancelled(self, rng):
        """Hangs up half-way: in the middle of an upload, or while waiting for an answer."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        try:
            if rng.random() < 0.5:
                body, ctype = multipart({"question": "q"}, ("synth.mp4", self.video))
            else:
                body, ctype = json.dumps({"question": "a cancelled question", "video_path": self.video_path}).encode(), \
                    "application/json"
            s.sendall((f"POST /inference HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                       f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode())
            s.sendall(body[: rng.randrange(1, len(body) + 1)])
            time.sleep(rng.random() * 0.5)
        finally:
            s.close()
        return 0

    # One request of a random kind; returns (kind, expected?) and records it.
    def one(self, rng):
        kinds = ["good_upload", "good_path", "good_registered", "bad_file", "bad_path", "oversized", "chunked",
                 "wrong_key", "foreign_host", "cancelled", "health", "endless_header", "header_flood", "pipelined",
                 "slow_body"]
        weights = [2, 2, 2, 3, 3, 2, 2, 3, 2, 3, 2, 2, 2, 2, 1]
        kind = rng.choices(kinds, weights)[0]
        ok, busy, status = False, 0, None
        if kind.startswith("good_"):
            while True:
                status, body = self.good(kind[5:])
                if not is_busy(status, body):
                    break
                busy += 1
                time.sleep(0.2)
            ok = status == 200 and isinstance(body, dict) and body.get("text") == self.reference[kind[5:]]
            if not ok:
                self.fail(f"{kind}: {status} {str(body)[:200]}")
        elif kind == "bad_file":
            body, ctype = multipart({"question": "q"}, ("notes.txt", self.text_file))
            status, body = self.request("POST", "/v1/videos", body, ctype)
            busy = is_busy(status, body)
            ok = busy or (status == 400 and body == {"error": "video not available"})
        elif kind == "bad_path":
            path = rng.choice(["/etc/passwd", self.root + "/../serve.log", self.root + "/missing.mp4", self.root])
            status, body = self.request("POST", "/inference", json.dumps({"question": "q", "video_path": path}),
                                        "application/json")
            ok = status == 400 and body == {"error": "video not available"}
        elif kind == "oversized":
            body, ctype = multipart({"question": "q"}, ("big.mp4", self.video + b"\0" * (3 << 20)))
            status, body = self.request("POST", "/inference", body, ctype)
            busy = is_busy(status, body)
            ok = busy or status == 413
        elif kind == "chunked":
            status = self.chunked(rng.choice([4, 16, 48]) << 20)
            busy = status == 503
            ok = busy or status == 413
        elif kind == "wrong_key":
            if rng.random() < 0.5:
                status, _ = self.request("GET", "/v1/videos", key=rng.choice([None, "wrong", KEY + "x"]))
            else:
                body, ctype = multipart({"question": "q"}, ("synth.mp4", self.video))
                status, _ = self.request("POST", "/inference", body, ctype, key="wrong")
            ok = status == 401
        elif kind == "foreign_host":
            status, _ = self.request("GET", "/v1/videos", host="rebind.example:80")
            ok = status == 403
        elif kind == "cancelled":
            ok = self.cancelled(rng) == 0
        elif kind == "endless_header":  # one header line of 1-8 MiB: 431 at its 8193rd byte
            head = f"GET /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\nX-Big: "
            codes = self.raw(head.encode() + b"a" * (rng.randint(1, 8) << 20))
            status = codes[0] if codes else 0
            ok = codes == [431]
        elif kind == "header_flood":  # 20 000-200 000 short header lines: 431 at the 101st
            codes = self.raw(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * rng.randint(20000, 200000))
            status = codes[0] if codes else 0
            ok = codes == [431]
        elif kind == "slow_body":  # 200 bytes/s: 408 once the floor's 20 s of grace are spent
            codes = self.trickle()
            status = codes[0] if codes else 0
            busy = status == 503
            ok = busy or codes == [408]
        elif kind == "pipelined":  # 2-4 requests in one write: every one answered, in order
            n = rng.randint(2, 4)
            get = f"GET /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
            codes = self.raw(((get + "\r\n") * (n - 1) + get + "Connection: close\r\n\r\n").encode())
            status = codes[-1] if codes else 0
            ok = codes == [200] * n
        else:
            status, body = self.request("GET", "/health")
            ok = status == 200 and body.get("status") == "ok"
        with self.lock:
            c = self.counts[kind]
            c[0] += 1
            c[1 if ok else 2] += 1
            c[3] += int(busy)
        if not ok and not kind.startswith("good_"):
            self.fail(f"{kind}: unexpected answer {status}")

    def fail(self, msg):
        with self.lock:
            if len(self.failures) < 20:
                self.failures.append(msg)

    def client(self, seed, deadline):
        rng = random.Random(seed)
        while time.time() < deadline:
            try:
                self.one(rng)
            except Exception as e:  # a connection error where an answer was due
                self.fail(f"exception: {e!r}")
                with self.lock:
                    self.counts["exceptions"][0] += 1
                    self.counts["exceptions"][2] += 1

    def leftovers(self):
        """Files a finished server should not have: uploads, clips, temporary token files."""
        left = []
        for base, _, files in os.walk(self.server_tmp):
            left += [os.path.join(base, f) for f in files]
        for base, _, files in os.walk(self.cache):
            left += [os.path.join(base, f) for f in files if not f.endswith(".vidi")]
        return left

    def run(self):
        a = self.a
        self.start()
        pid = self.proc.pid
        try:
            # Single-client answers first (and the registered video).
            self.reference = {}
            for kind in QUESTIONS:
                if kind == "registered":
                    status, body = self.request("POST", "/v1/videos", json.dumps({"video_path": self.video_path}),
                                                "application/json")
                    assert status == 200, body
                    self.registered = body["id"]
                status, body = self.good(kind)
                assert status == 200, body
                self.reference[kind] = body["text"]
            rss_before = rss_kib(pid)
            fds_before = len(os.listdir(f"/proc/{pid}/fd"))
            deadline = time.time() + a.seconds
            threads = [threading.Thread(target=self.client, args=(i, deadline)) for i in range(a.clients)]
            t0 = time.time()
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                self.rss_peak = max(self.rss_peak, rss_kib(pid))
                time.sleep(0.2)
            elapsed = time.time() - t0
            time.sleep(2)  # cancelled jobs finish, connections close
            status, health = self.request("GET", "/health")
            rss_after = rss_kib(pid)
            fds_after = len(os.listdir(f"/proc/{pid}/fd"))
            uploads = health.get("uploads", {})
        finally:
            code = self.stop()
        leftovers = self.leftovers()
        bound_kib = a.rss_bound_mb * 1024
        checks = {
            "server answers /health after the load": status == 200,
            f"RSS peak under {a.rss_bound_mb} MiB": self.rss_peak < bound_kib,
            "no upload, clip or temporary file left (server stopped)": not leftovers,
            "upload store empty after the load": uploads.get("files") == 0 and uploads.get("bytes") == 0,
            "every good request got the single-client answer":
                all(self.counts[k][2] == 0 for k in ("good_upload", "good_path", "good_registered")),
            "every other request got its expected answer": not self.failures,
            "clean exit on SIGTERM": code == 0,
        }
        print(f"vidi serve soak: {a.clients} clients, {elapsed:.0f} s, tiny-a on the CPU, loopback\n")
        print("| kind | requests | expected answers | 503 busy (accepted, or retried) | unexpected |")
        print("| --- | ---: | ---: | ---: | ---: |")
        total = [0, 0, 0, 0]
        for kind in sorted(self.counts):
            c = self.counts[kind]
            total = [x + y for x, y in zip(total, c)]
            print(f"| {kind} | {c[0]} | {c[1]} | {c[3]} | {c[2]} |")
        print(f"| **all** | {total[0]} | {total[1]} | {total[3]} | {total[2]} |\n")
        print(f"RSS: {rss_before / 1024:.0f} MiB before the load, {self.rss_peak / 1024:.0f} MiB peak, "
              f"{rss_after / 1024:.0f} MiB after (bound {a.rss_bound_mb} MiB); open fds {fds_before} before, "
              f"{fds_after} after; leaked files: {len(leftovers)}\n")
        for name, ok in checks.items():
            print(f"- {'ok' if ok else 'FAILED'}: {name}")
        for f in self.failures:
            print(f"  - {f}")
        for f in leftovers[:10]:
            print(f"  - left: {f}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return all(checks.values())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vidi", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--seconds", type=int, default=180)
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--rss-bound-mb", type=int, default=512)
    a = p.parse_args()
    a.vidi, a.model, a.video = map(os.path.abspath, (a.vidi, a.model, a.video))
    sys.exit(0 if Soak(a).run() else 1)


if __name__ == "__main__":
    main()
