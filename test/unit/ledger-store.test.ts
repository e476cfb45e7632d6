/**
 * The local state is safe with two (or more) server processes writing at once: read-modify-write under the
 * lock loses no update, files stay private, and a reader never sees a half-written document.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/store.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-ledger-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const storeJs = path.resolve(__dirname, "..", "..", "dist", "ledger", "store.js");

function worker(home: string, n: number, tag: string): Promise<number> {
  const code = `
    const { Ledger } = await import(${JSON.stringify(storeJs)});
    const l = new Ledger(${JSON.stringify(home)});
    for (let i = 0; i < ${n}; i++) {
      await l.update("counter", { n: 0, by: {} }, (c) => ({ n: c.n + 1, by: { ...c.by, ${JSON.stringify(tag)}: (c.by[${JSON.stringify(tag)}] ?? 0) + 1 } }));
    }`;
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--input-type=module", "-e", code], { stdio: "inherit" });
    p.on("exit", (c) => resolve(c ?? 1));
  });
}

describe("Ledger", () => {
  it("loses no update when four processes increment the same document 50 times each", async () => {
    if (!fs.existsSync(storeJs)) throw new Error("build first (npm run build): dist/ledger/store.js is missing");
    const home = path.join(dir, "shared");
    const codes = await Promise.all(["a", "b", "c", "d"].map((t) => worker(home, 50, t)));
    expect(codes).toEqual([0, 0, 0, 0]);
    const doc = new Ledger(home).read<{ n: number; by: Record<string, number> }>("counter", { n: 0, by: {} });
    expect(doc.n).toBe(200);
    expect(doc.by).toEqual({ a: 50, b: 50, c: 50, d: 50 });
    expect(fs.readdirSync(home).filter((f) => f.endsWith(".tmp") || f.endsWith(".lock"))).toEqual([]);
  }, 120_000);

  it("keeps the directory and its documents private, and refuses names that escape it", () => {
    const l = new Ledger(path.join(dir, "priv"));
    l.write("hosts", { a: 1 });
    expect(fs.statSync(l.dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(l.file("hosts")).mode & 0o777).toBe(0o600);
    expect(() => l.file("../outside")).toThrow();
    expect(l.read("missing", { fallback: true })).toEqual({ fallback: true });
  });

  it("recovers from a lock left behind by a crashed process once it is stale", async () => {
    const l = new Ledger(path.join(dir, "stale"));
    const lock = `${l.file("doc")}.lock`;
    fs.writeFileSync(lock, "99999");
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lock, old, old);
    await l.update("doc", { v: 0 }, (d) => ({ v: d.v + 1 }));
    expect(l.read("doc", { v: 0 }).v).toBe(1);
  });
});
