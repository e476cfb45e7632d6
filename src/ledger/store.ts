/**
 * The local state: small JSON documents under RGT_HOME, written atomically (tmp + fsync + rename)
 * and updated under an exclusive lock file so two server processes never lose each other's writes.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { rgtHome } from "../common/config.js";

const LOCK_STALE_MS = 30_000;

export class Ledger {
  readonly dir: string;
  constructor(dir: string = rgtHome()) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    try { fs.chmodSync(dir, 0o700); } catch { /* not ours to fix */ }
  }

  file(name: string): string {
    if (!/^[a-z0-9_.\-/]+$/i.test(name) || name.includes("..")) throw new Error(`bad ledger name ${name}`);
    return path.join(this.dir, name.endsWith(".json") ? name : `${name}.json`);
  }

  read<T>(name: string, fallback: T): T {
    try {
      return JSON.parse(fs.readFileSync(this.file(name), "utf8")) as T;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return fallback;
      throw e;
    }
  }

  /** Replace a document atomically. */
  write<T>(name: string, value: T): void {
    const target = this.file(name);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    const tmp = `${target}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    const fd = fs.openSync(tmp, "w", 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(value, null, 2) + "\n");
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, target);
  }

  /** Read-modify-write under an exclusive lock (safe across processes). */
  async update<T>(name: string, fallback: T, fn: (cur: T) => T | Promise<T>): Promise<T> {
    const lock = `${this.file(name)}.lock`;
    fs.mkdirSync(path.dirname(lock), { recursive: true, mode: 0o700 });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        fs.writeFileSync(lock, String(process.pid), { flag: "wx", mode: 0o600 });
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        try {
          const st = fs.statSync(lock);
          if (Date.now() - st.mtimeMs > LOCK_STALE_MS) { fs.rmSync(lock, { force: true }); continue; }
        } catch { continue; }
        if (Date.now() > deadline) throw new Error(`ledger lock busy: ${lock}`);
        await new Promise((r) => setTimeout(r, 15 + Math.random() * 30));
      }
    }
    try {
      const next = await fn(this.read(name, fallback));
      this.write(name, next);
      return next;
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }
}
