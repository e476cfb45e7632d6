/**
 * A box whose login shell talks on non-interactive sessions (an echo in ~/.bashrc — conda banners do this):
 * probe_env says so before anything breaks, rsync-based transfers refuse with a remedy that works instead of
 * "try again", and after the remedy the same calls succeed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";

let lab: Lab;
let srv: Awaited<ReturnType<typeof connectServer>>;
let src: string;

beforeAll(async () => {
  lab = await startLab([{ name: "chatty", gpus: 1, without: ["sbatch"] }]);
  await lab.boxes.chatty.writeFile("/root/.bashrc", 'echo "welcome to your rented box"\n');
  await lab.boxes.chatty.exec("mkdir -p /root/results && echo 'final weights' > /root/results/model.bin");
  src = fs.mkdtempSync(path.join(lab.root, "src-"));
  fs.writeFileSync(path.join(src, "train.py"), "print('hi')\n");
  srv = await connectServer(lab.env);
});
afterAll(async () => { await srv?.close(); await lab?.stop(); });

describe("a login shell that prints", () => {
  it("probe_env still answers, and warns SHELL_NOISE quoting what it printed", async () => {
    const r = await srv.call("probe_env", { host: "chatty" });
    expect(r.ok).toBe(true);
    const w = (r.warnings as { code: string; message: string }[]).find((x) => x.code === "SHELL_NOISE");
    expect(w?.message).toContain("welcome to your rented box");
  });

  it("push_code and pull_verify refuse SHELL_NOT_CLEAN with the fix, not 'run it again'", async () => {
    const p = await srv.call("push_code", { host: "chatty", local_dir: src, remote_dir: "/root/code" });
    expect(p.refused?.code).toBe("SHELL_NOT_CLEAN");
    expect(p.refused?.remedy).toContain("case $- in");
    const q = await srv.call("pull_verify", { host: "chatty", remote_path: "/root/results", local_dir: path.join(lab.root, "pulled"), expect: ["model.bin"] });
    expect(q.ok).toBe(false);
    expect(q.refused?.code).toBe("SHELL_NOT_CLEAN");
    expect(q.receipt_id ?? null).toBeNull();
  });

  it("after the remedy the same calls go through", async () => {
    await lab.boxes.chatty.writeFile("/root/.bashrc", 'case $- in *i*) ;; *) return ;; esac\necho "welcome to your rented box"\n');
    const r = await srv.call("probe_env", { host: "chatty" });
    expect((r.warnings as { code: string }[]).map((w) => w.code)).not.toContain("SHELL_NOISE");
    const p = await srv.call("push_code", { host: "chatty", local_dir: src, remote_dir: "/root/code" });
    expect(p.ok).toBe(true);
    expect(p.files_sent).toBe(1);
    const q = await srv.call("pull_verify", { host: "chatty", remote_path: "/root/results", local_dir: path.join(lab.root, "pulled"), expect: ["model.bin"] });
    expect(q.ok).toBe(true);
    expect(q.receipt_id).toMatch(/^rcpt-/);
  });
});
