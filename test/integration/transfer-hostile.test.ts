/**
 * Hostile trees both ways on both transports (rsync box p1, SFTP box p2 without rsync): every name class
 * (leading # ; -, spaces, newlines, control characters, backslash escapes, non-ASCII) lands identical on
 * the other end or the call refuses naming the file; links inside the tree travel as links, links that
 * leave it are reported and never followed, and a link to a credential is refused (SECRET_FILE) — on the
 * push side and on the box side of a pull. No receipt covers fewer files than the box listed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";
import { getReceipt } from "../../src/ledger/receipts.js";
import { Ledger } from "../../src/ledger/store.js";

let lab: Lab;
let s: ServerConnection;
let work: string;

const NAMES = [
  "#hash.py", ";semi.txt", "-dash", "--rsh=evil", "sp ace", " lead", "trail ", "new\nline", "tab\there",
  "esc\x1b[31mred\x07bell", "cr\rret", "del\x7f", "ü/ñandú.txt", "日本語.txt", "a\\#101", "back\\slash", "q\"uote's",
  "*star?[x]", "$(touch pwned)", "sub/#nested", "sub/;nested", "sub/-nested", "sub/new\nline",
];

type Snap = Record<string, string>;

/** path → "f:<sha256>" | "l:<target>" for everything under root but directories */
function localSnap(root: string): Snap {
  const out: Snap = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const abs = path.join(root, r);
      if (e.isSymbolicLink()) out[r] = `l:${fs.readlinkSync(abs)}`;
      else if (e.isDirectory()) walk(r);
      else out[r] = `f:${createHash("sha256").update(fs.readFileSync(abs)).digest("hex")}`;
    }
  };
  walk("");
  return out;
}

async function boxSnap(box: string, dir: string): Promise<Snap> {
  const r = await lab.boxes[box].exec(`cd ${dir} && find . -mindepth 1 ! -type d -printf '%y\\0%P\\0%l\\0' && printf 'HASHES\\0' && find . -type f -print0 | xargs -0 -r sha256sum -z --`);
  if (r.code !== 0) throw new Error(r.stderr);
  const [list, hashes] = r.stdout.split("HASHES\0");
  const out: Snap = {};
  const f = list.split("\0");
  for (let i = 0; i + 2 < f.length; i += 3) if (f[i] === "l") out[f[i + 1]] = `l:${f[i + 2]}`;
  for (const rec of hashes.split("\0").filter(Boolean)) {
    const sp = rec.indexOf("  ");
    out[rec.slice(sp + 2).replace(/^\.\//, "")] = `f:${rec.slice(0, sp)}`;
  }
  return out;
}

function hostileTree(root: string): void {
  NAMES.forEach((n, i) => {
    const f = path.join(root, n);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, `content ${i} of ${JSON.stringify(n)}\n`);
  });
  fs.symlinkSync("../#hash.py", path.join(root, "sub/link-in"));
  fs.symlinkSync("sub", path.join(root, "dirlink"));
  fs.symlinkSync("/etc/hostname", path.join(root, "link-out"));
}

beforeAll(async () => {
  lab = await startLab([{ name: "p1", gpus: 0 }, { name: "p2", gpus: 0, without: ["rsync"] }]);
  s = await connectServer(lab.env, { timeoutMs: 120_000 });
  work = fs.mkdtempSync(path.join(lab.root, "hostile-"));
}, 60_000);
afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

for (const [box, method] of [["p1", "rsync"], ["p2", "sftp"]] as const) {
  describe(`hostile names and links over ${method}`, () => {
    it("push: every name lands identical, in-tree links as links, the outside link reported and not sent", async () => {
      const src = path.join(work, `src-${box}`);
      hostileTree(src);
      const r = await s.call("push_code", { host: box, local_dir: src, remote_dir: "/root/hostile" });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(r.method).toBe(method);
      expect(r.warnings.map((w: { code: string }) => w.code)).toContain("LINK_OUTSIDE");
      expect(r.links_outside).toEqual(["link-out -> /etc/hostname"]);
      const want = localSnap(src);
      delete want["link-out"];
      expect(await boxSnap(box, "/root/hostile")).toEqual(want);
      // nothing left behind on the box: no partial dirs, no rsync temp files
      const debris = await lab.boxes[box].exec("cd /root/hostile && find . -name .rgt-partial -o -name '.*.??????' | head");
      expect(debris.stdout).toBe("");
      const again = await s.call("push_code", { host: box, local_dir: src, remote_dir: "/root/hostile" });
      expect(again.ok).toBe(true);
      expect(again.files_sent).toBe(0);
    });

    it("pull: the same tree comes back identical and the receipt covers every file the box listed", async () => {
      await lab.boxes[box].exec("ln -sfn /etc/hostname /root/hostile/box-out");
      const dst = path.join(work, `back-${box}`);
      const r = await s.call("pull_verify", { host: box, remote_path: "/root/hostile", local_dir: dst });
      expect(r.ok, JSON.stringify(r)).toBe(true);
      expect(r.files_total).toBe(NAMES.length);
      expect(r.warnings.find((w: { code: string }) => w.code === "LINK_OUTSIDE")?.message).toContain("box-out -> /etc/hostname");
      expect(r.links_outside).toEqual(["box-out -> /etc/hostname"]);
      expect(fs.existsSync(path.join(dst, "box-out"))).toBe(false);
      const want = await boxSnap(box, "/root/hostile");
      delete want["box-out"];
      const got = localSnap(dst);
      expect(got).toEqual(want);
      const receipt = getReceipt(new Ledger(lab.env.RGT_HOME), r.receipt_id)!;
      expect(receipt.files.map((f) => f.path).sort()).toEqual(Object.keys(want).filter((k) => want[k].startsWith("f:")).sort());
    });

    it("a link to a credential is refused on push (SECRET_FILE) and on the box side of a pull", async () => {
      const home = path.join(work, `home-${box}`);
      fs.mkdirSync(path.join(home, ".aws"), { recursive: true });
      fs.writeFileSync(path.join(home, ".aws/credentials"), "[default]\naws_secret_access_key=x\n");
      const src = path.join(work, `sec-${box}`);
      fs.mkdirSync(src, { recursive: true });
      fs.writeFileSync(path.join(src, "train.py"), "print(1)\n");
      fs.symlinkSync(path.join(home, ".aws/credentials"), path.join(src, "creds"));
      fs.symlinkSync(path.join(home, ".aws"), path.join(src, "awsdir"));
      const r = await s.call("push_code", { host: box, local_dir: src, remote_dir: "/root/sec" });
      expect(r.ok).toBe(false);
      expect(r.refused.code).toBe("SECRET_FILE");
      expect(r.refused.reason).toContain("creds ->");
      expect(r.refused.reason).toContain("awsdir ->");
      expect((await lab.boxes[box].exec("test -e /root/sec/creds || test -e /root/sec/train.py")).code).not.toBe(0);
      await lab.boxes[box].exec("mkdir -p /root/out-sec/.ssh && echo k > /root/out-sec/.ssh/id_ed25519 && mkdir -p /root/pullsec && echo r > /root/pullsec/result.txt && ln -s /root/out-sec/.ssh/id_ed25519 /root/pullsec/key");
      const p = await s.call("pull_verify", { host: box, remote_path: "/root/pullsec", local_dir: path.join(work, `pullsec-${box}`) });
      expect(p.ok).toBe(false);
      expect(p.refused.code).toBe("SECRET_FILE");
      expect(p.refused.reason).toContain("key -> /root/out-sec/.ssh/id_ed25519");
    });

    it("a name that is not UTF-8 is refused by name, never skipped", async () => {
      const src = path.join(work, `bad-${box}`);
      fs.mkdirSync(src, { recursive: true });
      fs.writeFileSync(path.join(src, "ok.txt"), "ok\n");
      fs.writeFileSync(Buffer.concat([Buffer.from(`${src}/bad-`), Buffer.from([0xff, 0xfe]), Buffer.from(".txt")]), "latin1 name\n");
      const r = await s.call("push_code", { host: box, local_dir: src, remote_dir: "/root/badname" });
      expect(r.ok).toBe(false);
      expect(r.refused.code).toBe("BAD_INPUT");
      expect(r.refused.reason).toMatch(/bad-.*\.txt/);
      await lab.boxes[box].exec("mkdir -p /root/badbox && echo a > /root/badbox/fine.txt && echo b > \"/root/badbox/bad-$(printf '\\377').txt\"");
      const p = await s.call("pull_verify", { host: box, remote_path: "/root/badbox", local_dir: path.join(work, `badbox-${box}`) });
      expect(p.ok).toBe(false);
      expect(p.refused.code).toBe("UNCARRIABLE");
      expect(p.refused.reason).toContain("bad-\\xff.txt");
      expect(p.receipt_id ?? null).toBeNull();
    });
  });
}
