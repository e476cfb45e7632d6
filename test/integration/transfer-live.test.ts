/**
 * push_code next to a live run (ARCHITECTURE principle 7): against real sshd boxes, real tmux and real rsync
 * (plus SFTP on a box without rsync), through the built server. A push that would change a file in the
 * workdir of a running queue is refused with LIVE_SCRIPT_MUTATION and leaves the box untouched; a brand-new
 * file is allowed; once stop_run has ended the run the same push goes through.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

type R = Record<string, any>;
let lab: Lab;
let srv: ServerConnection;
let work: string;

async function until(what: string, fn: () => Promise<R>, ok: (r: R) => boolean, timeoutMs = 60_000): Promise<R> {
  const t0 = Date.now();
  let last: R = {};
  while (Date.now() - t0 < timeoutMs) {
    last = await fn();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 1500)}`);
}

function writeTree(root: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const f = path.join(root, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content);
  }
}

const call = (name: string, args: R) => srv.call(name, args) as Promise<R>;

beforeAll(async () => {
  lab = await startLab([{ name: "lv-a", gpus: 0 }, { name: "lv-b", gpus: 0, without: ["rsync"] }]);
  srv = await connectServer(lab.env);
  work = fs.mkdtempSync(path.join(lab.root, "live-"));
}, 90_000);
afterAll(async () => {
  await srv?.close();
  await lab?.stop();
});

/** push v1 of a small project to /root/proj-<host>, launch a long cell in it, and wait until run_status says running */
async function startLiveRun(host: string, runName: string) {
  const src = path.join(work, host);
  const W = `/root/proj-${host}`;
  writeTree(src, { "train.sh": "echo v1\n", "conf/a.yaml": "lr: 0.1\n" });
  const p = await call("push_code", { host, local_dir: src, remote_dir: W });
  expect(p.ok, JSON.stringify(p)).toBe(true);
  const r = await call("launch_queue", { host, run_name: runName, workdir: W, cells: [{ name: "c", command: "sleep 30" }] });
  expect(r.ok, JSON.stringify(r)).toBe(true);
  await until("running", () => call("run_status", { run_id: runName }), (s) => s.cells?.[0]?.state === "running");
  return { box: lab.boxes[host], src, W };
}

describe("push_code never changes a file under a live run", () => {
  it("rsync path: refuses a changed file (box untouched), allows a new file, allows the change after stop_run", async () => {
    const { box, src, W } = await startLiveRun("lv-a", "live-a");

    // a changed script (same size, so only the content check can tell) and a changed config
    fs.writeFileSync(path.join(src, "train.sh"), "echo v2\n");
    fs.writeFileSync(path.join(src, "conf/a.yaml"), "lr: 0.2  # tuned\n");
    const t0 = Date.now();
    const r = await call("push_code", { host: "lv-a", local_dir: src, remote_dir: W });
    const took = Date.now() - t0;
    expect(r.ok, JSON.stringify(r)).toBe(false);
    expect(r.refused.code).toBe("LIVE_SCRIPT_MUTATION");
    expect(r.refused.reason).toContain("live-a");
    expect(r.refused.reason).toContain("train.sh");
    expect(r.refused.reason).toContain("conf/a.yaml");
    expect(r.refused.remedy).toContain(`${W}-v2`);
    expect(r.refused.remedy).toContain("stop_run");
    expect(r.changed_files.sort()).toEqual(["conf/a.yaml", "train.sh"]);
    expect(r.run_ids).toEqual(["live-a"]);
    expect(JSON.stringify(r).length).toBeLessThan(2048);
    expect(took).toBeLessThan(15_000);
    expect(await box.readFile(`${W}/train.sh`)).toBe("echo v1\n");
    expect(await box.readFile(`${W}/conf/a.yaml`)).toBe("lr: 0.1\n");

    // the same refusal when the push targets a directory that contains the workdir (as "~/…"), or lies inside it
    const parentSrc = path.join(work, "a-parent");
    writeTree(parentSrc, { "proj-lv-a/train.sh": "echo v3\n", "unrelated.txt": "x\n" });
    const up = await call("push_code", { host: "lv-a", local_dir: parentSrc, remote_dir: "~/" });
    // home itself is now refused as a destination before anything else (BAD_INPUT, issue 13 item 5);
    // either refusal keeps the live workdir untouched
    expect(["LIVE_SCRIPT_MUTATION", "BAD_INPUT"], JSON.stringify(up)).toContain(up.refused?.code);
    if (up.refused?.code === "LIVE_SCRIPT_MUTATION") expect(up.changed_files).toEqual(["proj-lv-a/train.sh"]);
    const confSrc = path.join(work, "a-conf");
    writeTree(confSrc, { "a.yaml": "lr: 0.3\n" });
    const down = await call("push_code", { host: "lv-a", local_dir: confSrc, remote_dir: `${W}/conf` });
    expect(down.refused?.code, JSON.stringify(down)).toBe("LIVE_SCRIPT_MUTATION");
    expect(await box.readFile(`${W}/train.sh`)).toBe("echo v1\n");
    expect(await box.readFile(`${W}/conf/a.yaml`)).toBe("lr: 0.1\n");
    expect((await box.exec("test -e /root/unrelated.txt && echo sent || echo absent")).stdout.trim()).toBe("absent");

    // a brand-new file next to the unchanged ones: nothing running has it open → allowed
    const newSrc = path.join(work, "a-new");
    writeTree(newSrc, { "train.sh": "echo v1\n", "conf/a.yaml": "lr: 0.1\n", "notes/new.md": "added while running\n" });
    const add = await call("push_code", { host: "lv-a", local_dir: newSrc, remote_dir: W });
    expect(add.ok, JSON.stringify(add)).toBe(true);
    // (the two unchanged files have newer local mtimes, so rsync re-writes them with identical content: harmless)
    expect(add.files_sent).toBeGreaterThanOrEqual(1);
    expect(await box.readFile(`${W}/train.sh`)).toBe("echo v1\n");
    expect(await box.readFile(`${W}/notes/new.md`)).toBe("added while running\n");

    // a push somewhere else on the box is unaffected by the run
    const other = await call("push_code", { host: "lv-a", local_dir: src, remote_dir: `${W}-v2` });
    expect(other.ok, JSON.stringify(other)).toBe(true);
    expect(await box.readFile(`${W}-v2/train.sh`)).toBe("echo v2\n");

    // rsync's quick check compares size and mtime: keep the edit's mtime apart from the copy pushed above
    const later = new Date(Date.now() + 5_000);
    for (const f of ["train.sh", "conf/a.yaml"]) fs.utimesSync(path.join(src, f), later, later);
    const st = await call("stop_run", { run_id: "live-a" });
    expect(st.ok, JSON.stringify(st)).toBe(true);
    expect(st.stopped).toEqual(["c"]);
    const again = await call("push_code", { host: "lv-a", local_dir: src, remote_dir: W });
    expect(again.ok, JSON.stringify(again)).toBe(true);
    expect(await box.readFile(`${W}/train.sh`)).toBe("echo v2\n");
    expect(await box.readFile(`${W}/conf/a.yaml`)).toBe("lr: 0.2  # tuned\n");
  }, 120_000);

  it("SFTP path (box without rsync): the same refusal by hash comparison, and the same allowances", async () => {
    const { box, src, W } = await startLiveRun("lv-b", "live-b");

    fs.writeFileSync(path.join(src, "train.sh"), "echo v2\n");
    const r = await call("push_code", { host: "lv-b", local_dir: src, remote_dir: W });
    expect(r.refused?.code, JSON.stringify(r)).toBe("LIVE_SCRIPT_MUTATION");
    expect(r.changed_files).toEqual(["train.sh"]);
    expect(await box.readFile(`${W}/train.sh`)).toBe("echo v1\n");

    // identical content with a newer mtime is not a change of what the run reads
    fs.writeFileSync(path.join(src, "train.sh"), "echo v1\n");
    fs.writeFileSync(path.join(src, "extra.py"), "print(1)\n");
    const same = await call("push_code", { host: "lv-b", local_dir: src, remote_dir: W });
    expect(same.ok, JSON.stringify(same)).toBe(true);
    expect(same.method).toBe("sftp");
    expect(await box.readFile(`${W}/extra.py`)).toBe("print(1)\n");

    fs.writeFileSync(path.join(src, "train.sh"), "echo v2\n");
    // SFTP skips a file whose size and mtime (whole seconds) match: give the edit a distinct mtime
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(path.join(src, "train.sh"), later, later);
    expect((await call("stop_run", { run_id: "live-b" })).ok).toBe(true);
    const again = await call("push_code", { host: "lv-b", local_dir: src, remote_dir: W });
    expect(again.ok, JSON.stringify(again)).toBe(true);
    expect(await box.readFile(`${W}/train.sh`)).toBe("echo v2\n");
  }, 120_000);
});
