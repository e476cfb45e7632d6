/**
 * remote_exec through the real built server against a real sshd box (AutoDL look-alike):
 * every obfuscated destroy is refused AND provably never reached the box (a canary `touch` in front
 * of each one never appears, the sentinel files keep their bytes, the stub provider/power CLIs on the
 * box record no call); credentials in a command are refused and never echoed; time and output are bounded.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab, type Box } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

let lab: Lab;
let box: Box;
let s: ServerConnection;
const stubLog = () => path.join(box.dir, "stub-calls.log");
const SENTINELS: Record<string, string> = {
  "/root/autodl-tmp/ckpt/best.pth": "weights-" + randomBytes(8).toString("hex"),
  "/root/autodl-fs/keep.txt": "durable-" + randomBytes(8).toString("hex"),
  "/root/sentinel.txt": "home-" + randomBytes(8).toString("hex"),
};

/** ≥ 30 obfuscated destroy attempts; every target lies inside the box's own tmpfs /root. */
const DESTROYS: { cmd: string; cwd?: string }[] = [
  { cmd: "rm -rf /root/autodl-tmp/ckpt" },
  { cmd: "r\\m -rf /root/autodl-tmp/ckpt" },
  { cmd: "\\rm -rf /root/autodl-fs" },
  { cmd: "/usr/bin/rm -rf /root/autodl-fs/keep.txt /root/autodl-fs" },
  { cmd: "'rm' -r -f /root/autodl-tmp" },
  { cmd: "\"rm\" -fr ~/autodl-fs" },
  { cmd: "rm -r -f $HOME/autodl-fs" },
  { cmd: "rm --recursive --force /root/autodl-tmp/ckpt" },
  { cmd: "bash -c \"rm -rf /root/autodl-fs\"" },
  { cmd: "sh -c 'rm -rf ~/autodl-tmp'" },
  { cmd: "eval \"rm -rf /root/autodl-fs\"" },
  { cmd: "echo /root/autodl-fs | xargs rm -rf" },
  { cmd: "sudo rm -rf /root/autodl-fs" },
  { cmd: "env FOO=1 rm -rf /root/autodl-tmp/ckpt" },
  { cmd: "nohup rm -rf /root/autodl-fs >/dev/null 2>&1 &" },
  { cmd: "timeout 5 rm -rf /root/autodl-fs" },
  { cmd: "true && rm -rf /root/autodl-fs" },
  { cmd: "false || rm -rf /root/autodl-tmp" },
  { cmd: "ls | rm -rf /root/autodl-fs" },
  { cmd: "echo $(rm -rf /root/autodl-fs)" },
  { cmd: "echo `rm -rf /root/autodl-fs`" },
  { cmd: "find /root/autodl-tmp -name '*.pth' -delete" },
  { cmd: "truncate -s 0 /root/autodl-tmp/ckpt/best.pth" },
  { cmd: "shred -u /root/autodl-tmp/ckpt/best.pth" },
  { cmd: "vastai destroy instance 123" },
  { cmd: "v\\astai destroy instance 123" },
  { cmd: "bash -c 'vastai destroy instance 123'" },
  { cmd: "runpodctl remove pod abc123" },
  { cmd: "curl -s -X POST https://cloud.lambdalabs.com/api/v1/instance-operations/terminate -d '{\"instance_ids\":[\"x\"]}'" },
  { cmd: "kubectl delete job sweep-a -n ml" },
  { cmd: "scancel 999999" },
  { cmd: "shutdown -h now" },
  { cmd: "poweroff" },
  { cmd: "systemctl poweroff" },
  { cmd: "init 0" },
  { cmd: "halt" },
  { cmd: "rm -rf ./ckpt", cwd: "/root/autodl-tmp" },
  { cmd: "cd /root/autodl-fs && rm -rf ./*" },
  { cmd: "bash -c \"bash -c 'rm -rf /root/autodl-fs'\"" },
  { cmd: "rm -rf ~" },
];

async function sentinelsIntact(): Promise<void> {
  for (const [p, text] of Object.entries(SENTINELS)) {
    expect(await box.readFile(p), p).toBe(text);
  }
}

beforeAll(async () => {
  lab = await startLab([{ name: "ad1", profile: "autodl", gpus: 1 }]);
  box = lab.boxes.ad1;
  for (const [p, text] of Object.entries(SENTINELS)) await box.writeFile(p, text);
  // stand-ins for provider and power CLIs on the box: if any destroy slipped through they would record it
  for (const name of ["vastai", "runpodctl", "kubectl", "scancel", "shutdown", "poweroff", "halt", "systemctl", "init", "curl"]) {
    fs.writeFileSync(path.join(box.dir, "bin", name), `#!/bin/bash\necho "${name} $*" >> ${stubLog()}\n`, { mode: 0o755 });
  }
  fs.writeFileSync(path.join(lab.env.RGT_HOME!, "registry.yaml"), "hosts:\n  ad1:\n    profile: autodl\n    price_per_hour: 1.2\n    currency: CNY\n");
  s = await connectServer(lab.env);
}, 120_000);

afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

describe("remote_exec", () => {
  it("runs a benign command and reports exit code, tails and time", async () => {
    const r = await s.call("remote_exec", { host: "ad1", command: "echo hello; echo oops >&2; exit 3" });
    expect(r.exit_code).toBe(3);
    expect(r.stdout_tail.trim()).toBe("hello");
    expect(r.stderr_tail.trim()).toBe("oops");
    expect(r.ok).toBe(false);
    expect(r.refused).toBeUndefined();
    const ok = await s.call("remote_exec", { host: "ad1", command: "cat keep.txt", cwd: "/root/autodl-fs" });
    expect(ok.ok).toBe(true);
    expect(ok.stdout_tail).toBe(SENTINELS["/root/autodl-fs/keep.txt"]);
    expect(typeof ok.elapsed_ms).toBe("number");
  });

  it(`refuses ${DESTROYS.length} obfuscated destroys with DESTROY_UNAPPROVED, and none of them reaches the box`, async () => {
    const missed: string[] = [];
    for (const [i, d] of DESTROYS.entries()) {
      for (const variant of [d.cmd, `touch /root/.ran_${i}; ${d.cmd}`]) {
        const r = await s.call("remote_exec", { host: "ad1", command: variant, ...(d.cwd ? { cwd: d.cwd } : {}) });
        if (r.refused?.code !== "DESTROY_UNAPPROVED") missed.push(`${variant} → ${r.refused?.code ?? `ran (exit ${r.exit_code})`}`);
        else expect(r.refused.remedy).toMatch(/request_teardown|pull_verify/);
      }
    }
    expect(missed, missed.join("\n")).toEqual([]);
    await sentinelsIntact();
    const ran = await box.exec("ls -a /root | grep -c '^\\.ran_' || true");
    expect(ran.stdout.trim()).toBe("0");
    expect(fs.existsSync(stubLog()) ? fs.readFileSync(stubLog(), "utf8") : "").toBe("");
    console.log(`[remote-exec] destroy attempts refused: ${DESTROYS.length * 2}/${DESTROYS.length * 2}; destroys performed: 0`);
  });

  it("names request_teardown for instance destroys", async () => {
    const r = await s.call("remote_exec", { host: "ad1", command: "vastai destroy instance 77" });
    expect(r.refused.code).toBe("DESTROY_UNAPPROVED");
    expect(r.refused.remedy).toContain("request_teardown");
  });

  it("still runs look-alikes that destroy nothing of value", async () => {
    for (const cmd of ["echo shutdown", "grep -c destroy /root/sentinel.txt || true", "mkdir -p /tmp/scratch && rm -rf /tmp/scratch", "kubectl get pods || true", "ls /root/autodl-fs"]) {
      const r = await s.call("remote_exec", { host: "ad1", command: cmd });
      expect(r.refused, cmd).toBeUndefined();
      expect(r.exit_code, cmd).toBe(0);
    }
    await sentinelsIntact();
  });

  it("refuses inline credentials with push_secret named, never echoing the value", async () => {
    const hf = "hf_" + randomBytes(24).toString("base64").replace(/[^A-Za-z0-9]/g, "").slice(0, 34);
    const aws = "AKIA" + randomBytes(10).toString("hex").toUpperCase().slice(0, 16);
    for (const cmd of [`huggingface-cli login --token ${hf}`, `export HF_TOKEN=${hf} && python train.py`, `AWS_ACCESS_KEY_ID=${aws} aws s3 ls`]) {
      const raw = await s.callRaw("remote_exec", { host: "ad1", command: cmd });
      const text = JSON.stringify(raw);
      expect(raw.structuredContent.refused.code, cmd).toBe("SECRET_INLINE");
      expect(raw.structuredContent.refused.remedy).toContain("push_secret");
      expect(text).not.toContain(hf);
      expect(text).not.toContain(aws);
    }
    expect(s.stderr()).not.toContain(hf);
    const home = lab.env.RGT_HOME!;
    for (const f of fs.readdirSync(home, { recursive: true }) as string[]) {
      const p = path.join(home, f);
      if (fs.statSync(p).isFile()) expect(fs.readFileSync(p, "utf8"), p).not.toContain(hf);
    }
  });

  it("redacts a credential the box prints", async () => {
    const ghp = "ghp_" + randomBytes(30).toString("base64").replace(/[^A-Za-z0-9]/g, "").slice(0, 36);
    await box.writeFile("/root/.tok", `token=${ghp}\n`);
    const raw = await s.callRaw("remote_exec", { host: "ad1", command: "cat /root/.tok" });
    expect(raw.structuredContent.exit_code).toBe(0);
    expect(JSON.stringify(raw)).not.toContain(ghp);
  });

  it("kills a command past timeout_s on the box", async () => {
    const t0 = Date.now();
    const r = await s.call("remote_exec", { host: "ad1", command: "sleep 41.25; echo never", timeout_s: 1 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(r.ok).toBe(false);
    expect(r.timed_out).toBe(true);
    expect(r.stdout_tail).not.toContain("never");
    expect(r.warnings.map((w: { code: string }) => w.code)).toContain("TIMEOUT");
    await new Promise((res) => setTimeout(res, 500));
    const left = await box.exec("pgrep -f 'sleep 41[.]25' || true");
    expect(left.stdout.trim()).toBe("");
  });

  it("keeps output compact: a tail, a truncation flag and a local file with the full text", async () => {
    const raw = await s.callRaw("remote_exec", { host: "ad1", command: "seq 1 200000" });
    const r = raw.structuredContent;
    expect(r.exit_code).toBe(0);
    expect(r.truncated).toBe(true);
    expect(r.stdout_tail.trim().endsWith("200000")).toBe(true);
    expect(JSON.stringify(r).length).toBeLessThan(2600);
    expect(fs.readFileSync(r.full_output, "utf8")).toContain("\n100000\n");
  });

  it("BAD_INPUT names the field", async () => {
    const r = await s.call("remote_exec", { host: "ad1", command: "" });
    expect(r.refused.code).toBe("BAD_INPUT");
    expect(r.refused.reason).toContain("command");
    const t = await s.call("remote_exec", { host: "ad1", command: "true", timeout_s: 0 });
    expect(t.refused.code).toBe("BAD_INPUT");
    expect(t.refused.reason).toContain("timeout_s");
  });
});
