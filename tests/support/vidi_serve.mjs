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

// Runs a test's main() under a watchdog of `limitMs`, then `cleanup()`, the server's stop
// (`server()` gives the running one, or null) and `after()`; prints "[tag] PASS" or the failure
// and exits with status 0 or 1. A server that does not exit 0 on SIGTERM fails the test.
export async function runTest(tag, main, { limitMs, server, cleanup = async () => {}, after = () => {} }) {
  const watchdog = setTimeout(() => {
    console.error(`[${tag}] FAIL: over ${limitMs / 1000} s`);
    server()?.child.kill("SIGKILL");
    process.exit(1);
  }, limitMs);
  let failed = false;
  try {
    await main();
  } catch (e) {
    failed = true;
    console.error(`[${tag}] FAIL: ${e.stack || e}`);
    if (server()) console.error(server().log().split("\n").slice(-20).join("\n"));
  } finally {
    await cleanup();
    const code = server() ? await server().stop() : 0;
    if (code !== 0) { failed = true; console.error(`[${tag}] FAIL: vidi serve exited with ${code} on SIGTERM`); }
    after();
    clearTimeout(watchdog);
  }
  if (!failed) console.log(`[${tag}] PASS`);
  process.exit(failed ? 1 : 0);
}
