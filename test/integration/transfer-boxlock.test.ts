/**
 * The box's own transfer lock: a push from another client machine (here an OpenSSH session of this test
 * holding scripts/box_lock.sh, the way a second server would) into the same directory makes push_code
 * wait, then refuse with TRANSFER_BUSY naming that machine, with nothing written. When that holder's
 * connection dies (SIGKILL of its ssh, no clean release) the kernel drops the flock and the next push
 * goes through: no stale lock to clean by hand. A push into another directory is never held up. A box
 * without flock pushes unlocked and says so.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { inlineIncludes } from "../../src/remote/pool.js";

type R = Record<string, any>;
let lab: Lab;
let srv: ServerConnection;
let work: string;
const holders: ChildProcess[] = [];
const scripts = path.resolve(__dirname, "..", "..", "scripts");

beforeAll(async () => {
  lab = await startLab([{ name: "bl" }, { name: "bl-noflock", without: ["flock"] }]);
  srv = await connectServer(lab.env);
  work = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-boxlock-"));
  for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(work, `f${i}.py`), `print(${i})\n`);
}, 120_000);
afterAll(async () => {
  for (const h of holders) h.kill("SIGKILL");
  await srv?.close();
  await lab?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

/** another client holding the box lock of `dir`: resolves once the box says LOCKED */
function holdFromElsewhere(dir: string, who: string): Promise<ChildProcess> {
  const key = createHash("sha256").update(dir).digest("hex").slice(0, 32);
  const body = inlineIncludes(fs.readFileSync(path.join(scripts, "box_lock.sh"), "utf8"), scripts);
  const c = spawn("ssh", ["-F", lab.sshConfig, "bl", `bash -s -- ${key} 0 '${who}'`], { stdio: ["pipe", "pipe", "inherit"] });
  holders.push(c);
  c.stdin!.write(body.endsWith("\n") ? body : `${body}\n`);
  return new Promise((resolve, reject) => {
    let out = "";
    c.stdout!.on("data", (b: Buffer) => { out += b.toString(); if (out.includes("RGT_LOCK LOCKED")) resolve(c); else if (/RGT_LOCK (BUSY|NOLOCK)/.test(out)) reject(new Error(out)); });
    c.on("exit", () => reject(new Error(`holder ended: ${out}`)));
  });
}

describe("the box-side push lock", () => {
  it("another machine's push holds the directory: TRANSFER_BUSY naming it, nothing written; its death frees the lock", async () => {
    const dir = "/root/locked-proj";
    const other = await holdFromElsewhere(dir, "laptop-2 pid 4242, pushing into bl");
    const t = Date.now();
    const r = (await srv.call("push_code", { host: "bl", local_dir: work, remote_dir: dir })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(false);
    expect(r.refused.code).toBe("TRANSFER_BUSY");
    expect(r.refused.reason).toMatch(/another client holds the box's lock on \/root\/locked-proj \(laptop-2 pid 4242, pushing into bl\)/);
    expect(Date.now() - t, "it waited for the holder first").toBeGreaterThan(15_000);
    expect((await lab.boxes.bl.exec(`ls -A ${dir} | wc -l`)).stdout.trim(), "nothing written").toBe("0");

    // a push into another directory is not held up by it
    const free = (await srv.call("push_code", { host: "bl", local_dir: work, remote_dir: "/root/other-proj" })) as R;
    expect(free.ok, JSON.stringify(free)).toBe(true);

    // the holder's machine dies (no release): the lock goes with its connection
    other.kill("SIGKILL");
    await new Promise((res) => other.once("exit", res));
    const again = (await srv.call("push_code", { host: "bl", local_dir: work, remote_dir: dir })) as R;
    expect(again.ok, JSON.stringify(again)).toBe(true);
    expect(again.files_sent).toBe(5);
    expect(again.warnings.map((w: R) => w.code)).not.toContain("BOX_LOCK_UNAVAILABLE");
    // and the lock this push took is gone with its end: the other machine gets it at once
    const next = await holdFromElsewhere(dir, "laptop-2 again");
    next.stdin!.end();
  }, 120_000);

  it("a box without flock: the push goes through, unlocked, and says so", async () => {
    const r = (await srv.call("push_code", { host: "bl-noflock", local_dir: work, remote_dir: "/root/p" })) as R;
    expect(r.ok, JSON.stringify(r)).toBe(true);
    expect(r.warnings.find((w: R) => w.code === "BOX_LOCK_UNAVAILABLE")?.message).toMatch(/no flock on the box/);
  }, 60_000);
});
