/**
 * `rgt demo` as a user runs it: the built CLI as a child process (its own process group), against the
 * system sshd box (root) and against the embedded ssh2 box. Checks the transcript's key lines, that the
 * teardown gate refused before the pull and asked for a human after it, that the stub provider CLI was
 * never called, and that nothing the demo started is left running or left on disk.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/common/config.js";

const MAIN = path.join(packageRoot(), "dist", "cli", "main.js");
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-demo-test-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

interface DemoRun { code: number | null; out: string; err: string; pgid: number; ms: number }

function runDemo(args: string[], env: Record<string, string>, timeoutMs = 150_000): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [MAIN, "demo", ...args], { env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => { out += d.toString(); });
    p.stderr.on("data", (d: Buffer) => { err += d.toString(); });
    const timer = setTimeout(() => { try { process.kill(-p.pid!, "SIGKILL"); } catch { /* gone */ } reject(new Error(`demo timed out:\n${out}\n${err}`)); }, timeoutMs);
    p.on("error", reject);
    p.on("close", (code) => { clearTimeout(timer); resolve({ code, out, err, pgid: p.pid!, ms: Date.now() - t0 }); });
  });
}

function pgrep(args: string[]): string[] {
  const r = spawnSync("pgrep", args, { encoding: "utf8" });
  if (r.error) throw r.error;
  return r.stdout.split("\n").filter(Boolean).filter((pid) => Number(pid) !== process.pid);
}

/** processes holding a TCP connection to 127.0.0.1:port */
function connectionsTo(port: number): string[] {
  const r = spawnSync("ss", ["-Htnp", "state", "established", "( dport = :" + port + " or sport = :" + port + " )"], { encoding: "utf8" });
  if (r.error) throw r.error;
  return r.stdout.split("\n").filter((l) => l.trim());
}

function lineIndex(lines: string[], re: RegExp): number {
  return lines.findIndex((l) => re.test(l));
}

async function checkNothingLeft(run: DemoRun): Promise<void> {
  const state = /server state: (\S+) /.exec(run.out)?.[1];
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(run.out)?.[1]);
  expect(state, run.out).toBeTruthy();
  expect(port).toBeGreaterThan(0);
  // give exiting children a moment to be reaped
  await new Promise((r) => setTimeout(r, 500));
  expect(fs.existsSync(state!), `${state} still exists`).toBe(false);
  expect(pgrep(["-g", String(run.pgid)]), "processes left in the demo's process group").toEqual([]);
  expect(pgrep(["-f", state!]), `processes naming ${state}`).toEqual([]);
  expect(pgrep(["-f", "demo-sweep"]), "the run's tmux session or cells").toEqual([]);
  expect(pgrep(["-f", "python3 train[.]py"]), "training processes").toEqual([]);
  expect(connectionsTo(port), `connections to the box port ${port}`).toEqual([]);
  // the profile's data dir (/workspace on vast.ai) must never appear on the real machine
  expect(fs.existsSync("/workspace"), "the demo wrote /workspace on the real filesystem").toBe(false);
}

function checkTranscript(run: DemoRun): string[] {
  expect(run.code, `${run.out}\n${run.err}`).toBe(0);
  const lines = run.out.split("\n");
  expect(run.out).toMatch(/platform: vastai \(detected by host registry; markers agree: env VAST_CONTAINERLABEL\)/);
  expect(run.out).toContain("3/3 cells done");
  expect(run.out).toMatch(/state done: lr0 done 40\/40, lr1 done 40\/40, lr2 done 40\/40/);
  const refusedBefore = lineIndex(lines, /request_teardown \(before the pull\).*refused UNVERIFIED_ARTIFACTS/);
  const pull = lineIndex(lines, /^\[\s*\d+\] pull_verify /);
  const receipt = lineIndex(lines, /receipt rcpt-\S+: 6 file\(s\) hashed on both ends, all match: true/);
  const askAfter = lineIndex(lines, /request_teardown \(after the pull\).*refused APPROVAL_REQUIRED/);
  expect(refusedBefore, run.out).toBeGreaterThan(0);
  expect(pull).toBeGreaterThan(refusedBefore);
  expect(receipt).toBeGreaterThan(pull);
  expect(askAfter).toBeGreaterThan(receipt);
  expect(run.out).toMatch(/a human approves with: rgt approve apv_[A-Za-z0-9_-]+ — the demo stops here and approves nothing/);
  expect(run.out).toMatch(/would run, once approved: vastai destroy instance demo-4242/);
  expect(run.out).toContain("provider CLI (a stub vastai that records its arguments): 0 call(s)");
  // the secret went up and never came back
  expect(run.out).toMatch(/push_secret \$DEMO_WANDB_API_KEY → .*\n\s+30 bytes into a 0600 file/);
  expect(run.out).not.toMatch(/demo-[0-9a-f]{24}/);
  // economy: every call counted; the closing line agrees with the numbered lines
  const m = /done in [\d.]+ s: (\d+) tool calls, ([\d.]+) KB of tool output \((\d+) status checks?\)/.exec(run.out);
  expect(m, run.out).toBeTruthy();
  const calls = Number(m![1]);
  const polls = Number(m![3]);
  expect(lines.filter((l) => /^\[\s*\d+\] /.test(l))).toHaveLength(calls);
  expect(calls - polls).toBe(7);
  expect(Number(m![2])).toBeLessThanOrEqual(12);
  expect(run.out).toContain("cleanup: box stopped, temp dirs removed.");
  return lines;
}

describe("rgt demo", () => {
  it("refuses a bad argument with usage and exit 2", async () => {
    const r = await runDemo(["--box", "cloud"], {}, 20_000);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--box takes sshd or embedded");
    expect(r.out).toBe("");
  });

  it("runs the whole lifecycle on a system-sshd box, within a minute, touches no provider, leaves nothing behind", async () => {
    const providerLog = path.join(scratch, "provider-sshd.log");
    const run = await runDemo([], { RGT_DEMO_PROVIDER_LOG: providerLog });
    checkTranscript(run);
    expect(run.out).toMatch(/box: OpenSSH sshd on 127\.0\.0\.1:\d+ in its own mount namespace/);
    expect(run.out).toMatch(/3 GPU\(s\): NVIDIA RTX 4090; python 3\.\d+, torch /);
    expect(run.out).toMatch(/lr0→gpu 0, lr1→gpu 1, lr2→gpu 2/);
    expect(run.out).toMatch(/3 checkpoint\(s\) load-checked/);
    // one run_status holds its answer until the sweep is done: 8 calls in all, however loaded the machine
    expect(Number(/: (\d+) tool calls/.exec(run.out)![1])).toBe(8);
    expect(run.ms).toBeLessThan(60_000);
    expect(fs.existsSync(providerLog), "the stub provider CLI was called").toBe(false);
    await checkNothingLeft(run);
  }, 180_000);

  it("runs the same lifecycle on the embedded ssh2 box, files over SFTP, and leaves nothing behind", async () => {
    const providerLog = path.join(scratch, "provider-embedded.log");
    const run = await runDemo(["--box", "embedded"], { RGT_DEMO_PROVIDER_LOG: providerLog });
    checkTranscript(run);
    expect(run.out).toMatch(/box: embedded ssh2 server on 127\.0\.0\.1:\d+/);
    expect(run.out).toMatch(/over sftp: 2 file\(s\) sent/);
    expect(fs.existsSync(providerLog), "the stub provider CLI was called").toBe(false);
    await checkNothingLeft(run);
  }, 180_000);
});
