// `vidi serve --port 0 ARGS...` as a child process for the Node.js tests (tests/browser,
// tests/openai): resolves once it prints the port it listens on; stop() sends SIGTERM and
// resolves with the exit status (-1 for a signal, -9 when it had to be killed).
import { spawn } from "node:child_process";

export function startServe(vidi, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(vidi, ["serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const stop = () => new Promise((done) => {
      if (child.exitCode !== null) return done(child.exitCode);
      child.removeAllListeners("exit");
      child.on("exit", (code, signal) => done(signal ? -1 : code));
      child.kill("SIGTERM");
      setTimeout(() => { child.kill("SIGKILL"); done(-9); }, 20_000);
    });
    const onData = (d) => {
      out += d.toString();
      const m = out.match(/listening on http:\/\/[^:]+:(\d+)/);
      if (m) resolve({ port: Number(m[1]), child, stop, log: () => out });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d) => { out += d.toString(); });
    child.on("exit", (code) => reject(new Error(`vidi serve exited (${code}) before listening:\n${out}`)));
    setTimeout(() => reject(new Error(`vidi serve did not start in 60 s:\n${out}`)), 60_000);
  });
}
