/**
 * Long calls report progress over MCP (notifications/progress) when the client asks for it, ending at the
 * total; and a client that asks for nothing gets the same result without them.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";

let lab: Lab;
let srv: Awaited<ReturnType<typeof connectServer>>;
let src: string;

beforeAll(async () => {
  lab = await startLab([{ name: "prog", gpus: 0, without: ["sbatch"] }]);
  src = fs.mkdtempSync(path.join(lab.root, "tree-"));
  for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(src, `shard${i}.bin`), randomBytes(4 * 1024 * 1024));
  srv = await connectServer(lab.env);
});
afterAll(async () => { await srv?.close(); await lab?.stop(); });

describe("progress notifications", () => {
  it("push_code reports progress up to bytes_total", async () => {
    const seen: { progress: number; total?: number }[] = [];
    const r = await srv.call("push_code", { host: "prog", local_dir: src, remote_dir: "/root/tree" }, { onProgress: (p) => seen.push(p) });
    expect(r.ok).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    const last = seen[seen.length - 1];
    expect(last.total).toBe(r.bytes_total);
    expect(last.progress).toBe(r.bytes_total);
    // never backwards
    for (let i = 1; i < seen.length; i++) expect(seen[i].progress).toBeGreaterThanOrEqual(seen[i - 1].progress);
  });

  it("run_status wait_s holds the answer until the run is no longer running, reporting progress meanwhile", async () => {
    const l = await srv.call("launch_queue", { host: "prog", run_name: "waiter", workdir: "/root", cells: [{ name: "w", command: "sleep 4; echo finished" }] });
    expect(l.ok, JSON.stringify(l)).toBe(true);
    const now = await srv.call("run_status", { run_id: l.run_id, wait_s: 0 });
    expect(now.state).toBe("running");
    const seen: { progress: number }[] = [];
    const t0 = Date.now();
    const r = await srv.call("run_status", { run_id: l.run_id, wait_s: 30 }, { onProgress: (p) => seen.push(p) });
    const took = Date.now() - t0;
    expect(r.state).toBe("done");
    expect(took).toBeLessThan(20_000); // returned as soon as it finished, not at the end of the wait
    expect(seen.length).toBeGreaterThanOrEqual(1);
    const bad = await srv.call("run_status", { run_id: l.run_id, wait_s: 100_000 });
    expect(bad.refused?.code).toBe("BAD_INPUT");
  });

  it("pull_verify reports progress too, and a call without a progress token still succeeds", async () => {
    const seen: { progress: number; total?: number }[] = [];
    const r = await srv.call("pull_verify", { host: "prog", remote_path: "/root/tree", local_dir: path.join(lab.root, "back"), expect: ["shard0.bin"] }, { onProgress: (p) => seen.push(p) });
    expect(r.ok).toBe(true);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    const again = await srv.call("pull_verify", { host: "prog", remote_path: "/root/tree", local_dir: path.join(lab.root, "back2") });
    expect(again.ok).toBe(true);
    expect(again.files.length).toBe(6);
  });
});
