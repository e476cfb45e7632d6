/**
 * The process lifecycle of the built server (`node dist/cli/main.js serve`), the way a client ends it:
 * after a real SSH call (a pooled connection is open), closing stdin ends the server within a second, and
 * SIGTERM / SIGINT end it with exit 0 and nothing on stderr. No banner on stderr in normal operation.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../src/common/config.js";
import { startLab, type Lab } from "../../src/lab/box.js";

const entry = path.join(packageRoot(), "dist", "cli", "main.js");
let lab: Lab;

beforeAll(async () => {
  if (!fs.existsSync(entry)) throw new Error("build first: npm run build");
  lab = await startLab([{ name: "gpu1", gpus: 1 }]);
}, 180_000);
afterAll(async () => { await lab?.stop(); });

interface Served { child: ChildProcessWithoutNullStreams; stderr: () => string; exited: Promise<{ code: number | null; signal: string | null; at: number }> }

/** Start the server, initialize, and make one real SSH call (probe_env) so the pool holds a connection. */
async function serveAndProbe(): Promise<Served> {
  const child = spawn(process.execPath, [entry, "serve"], { env: { ...process.env, ...lab.env, RGT_DEBUG: "" }, stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((r) => child.on("exit", (code, signal) => r({ code, signal, at: Date.now() })));
  let buf = "";
  const waiting = new Map<number, (v: any) => void>();
  child.stdout.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      const msg = JSON.parse(line);
      if (msg.id !== undefined && waiting.has(msg.id)) { waiting.get(msg.id)!(msg); waiting.delete(msg.id); }
    }
  });
  let id = 0;
  const rpc = (method: string, params: unknown) => new Promise<any>((resolve) => {
    const n = ++id;
    waiting.set(n, resolve);
    child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", id: n, method, params })}\n`);
  });
  await rpc("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "lifecycle-test", version: "1" } });
  child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`);
  const r = await rpc("tools/call", { name: "probe_env", arguments: { host: "gpu1" } });
  expect(r.result.structuredContent.ok, JSON.stringify(r).slice(0, 400)).toBe(true);
  return { child, stderr: () => err, exited };
}

describe("server lifecycle", () => {
  it("stdin closed after a real SSH call: gone within a second, exit 0, stderr empty", async () => {
    const s = await serveAndProbe();
    const t0 = Date.now();
    s.child.stdin.end();
    const { code, at } = await s.exited;
    expect(at - t0).toBeLessThan(1000);
    expect(code).toBe(0);
    expect(s.stderr()).toBe("");
  }, 120_000);

  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    it(`${sig} after a real SSH call: exit 0, nothing on stderr`, async () => {
      const s = await serveAndProbe();
      const t0 = Date.now();
      s.child.kill(sig);
      const { code, signal, at } = await s.exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(at - t0).toBeLessThan(1000);
      expect(s.stderr()).toBe("");
    }, 120_000);
  }

  it("RGT_DEBUG=1 is the only way to get words on stderr", async () => {
    const child = spawn(process.execPath, [entry, "serve"], { env: { ...process.env, ...lab.env, RGT_DEBUG: "1" }, stdio: ["pipe", "pipe", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => { err += d; });
    const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    await new Promise((r) => setTimeout(r, 1500));
    child.stdin.end();
    expect(await exited).toBe(0);
    expect(err).toMatch(/serving MCP on stdio/);
  }, 60_000);
});
