/**
 * A small, real SSH server for `rgt demo` on machines where the system sshd cannot be used (not root,
 * or no openssh-server). Built on ssh2's Server: public-key auth with a key made for the demo, exec
 * sessions run by this machine's `bash -c` (stdin, stdout, stderr and the exit status carried over the
 * channel), and an SFTP subsystem served from the local filesystem.
 *
 * Every session gets HOME=<root>/box-home, its own TMUX_TMPDIR, and a marker variable; stop() ends
 * every process still carrying that marker (tmux servers and detached jobs included), so nothing the
 * demo started outlives it. The user's own HOME and tmux server are never touched.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import ssh2 from "ssh2";
import type { Connection, ServerChannel, SFTPWrapper, Attributes } from "ssh2";

const { Server, utils } = ssh2;
const { STATUS_CODE } = utils.sftp;

export interface EmbeddedBoxOptions {
  /** a directory this box owns (created by the caller; removed by the caller) */
  root: string;
  /** ssh alias written to the ssh config */
  alias: string;
  /** extra environment every session gets (platform markers) */
  env?: Record<string, string>;
  /** programs the box must not have (default ["rsync"], so file transfer goes over SFTP) */
  without?: string[];
  /** the interpreter `python3` means on the box (default: the first python3 that imports torch, else any) */
  python?: string;
}

export interface EmbeddedBox {
  readonly port: number;
  readonly sshConfig: string;
  readonly knownHosts: string;
  readonly identity: string;
  /** HOME of every session on the box */
  readonly boxHome: string;
  /** the interpreter `python3` runs on the box (undefined: none found) */
  readonly python?: string;
  /** whether that interpreter imports torch */
  readonly torch: boolean;
  /** pids of processes the box started that are still alive */
  livePids(): number[];
  stop(): Promise<void>;
}

function writeFile(file: string, text: string, mode = 0o600): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
}

/**
 * ssh2's generator now and then emits an ed25519 public key one byte short (a leading zero dropped: about
 * 1 in 250), which its own parser then rejects. Draw again until both halves parse.
 */
export function ed25519Pair(): { private: string; public: string } {
  for (let i = 0; i < 20; i++) {
    const k = utils.generateKeyPairSync("ed25519");
    if (!(utils.parseKey(k.public) instanceof Error) && !(utils.parseKey(k.private) instanceof Error)) return k;
  }
  throw new Error("could not generate a well-formed ed25519 key pair");
}

/** Does this interpreter run, and does it import torch? */
function tryPython(exe: string): { runs: boolean; torch: boolean } {
  const r = spawnSync(exe, ["-c", "import torch"], { stdio: "ignore", timeout: 30_000 });
  if (r.error) return { runs: false, torch: false };
  if (r.status === 0) return { runs: true, torch: true };
  return { runs: spawnSync(exe, ["-c", "pass"], { stdio: "ignore", timeout: 10_000 }).status === 0, torch: false };
}

function pickPython(): { exe?: string; torch: boolean } {
  const onPath = spawnSync("/bin/sh", ["-c", "command -v python3"], { encoding: "utf8" }).stdout?.trim();
  const candidates = [...new Set(["/usr/bin/python3", onPath].filter((x): x is string => !!x && fs.existsSync(x)))];
  let fallback: string | undefined;
  for (const c of candidates) {
    const t = tryPython(c);
    if (t.torch) return { exe: c, torch: true };
    if (t.runs) fallback ??= c;
  }
  return { exe: fallback, torch: false };
}

/**
 * The box's PATH: one directory of links to every program on this machine's PATH, minus `without`,
 * with `python3` pointing at the chosen interpreter. `command -v rsync` then fails on the box only.
 */
function buildBin(dir: string, without: string[], python?: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const skip = new Set(without);
  const seen = new Set<string>(["python3"]);
  for (const d of (process.env.PATH || "/usr/local/bin:/usr/bin:/bin").split(":")) {
    if (!d || !path.isAbsolute(d)) continue;
    let names: string[] = [];
    try { names = fs.readdirSync(d); } catch { continue; }
    for (const n of names) {
      if (seen.has(n) || skip.has(n)) continue;
      const full = path.join(d, n);
      try { fs.accessSync(full, fs.constants.X_OK); if (!fs.statSync(full).isFile()) continue; } catch { continue; }
      seen.add(n);
      try { fs.symlinkSync(full, path.join(dir, n)); } catch { /* name clash */ }
    }
  }
  if (python) fs.symlinkSync(python, path.join(dir, "python3"));
}

/** Processes of this user whose environment carries marker=value. */
function pidsWithMarker(marker: string, value: string): number[] {
  const needle = Buffer.from(`\0${marker}=${value}\0`);
  const out: number[] = [];
  let entries: string[] = [];
  try { entries = fs.readdirSync("/proc"); } catch { return out; }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${e}/environ`)]);
      if (env.includes(needle)) out.push(Number(e));
    } catch { /* gone or not ours */ }
  }
  return out;
}

function errStatus(err: NodeJS.ErrnoException): number {
  if (err.code === "ENOENT") return STATUS_CODE.NO_SUCH_FILE;
  if (err.code === "EACCES" || err.code === "EPERM") return STATUS_CODE.PERMISSION_DENIED;
  return STATUS_CODE.FAILURE;
}

function attrsOf(st: fs.Stats): Attributes {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
}

/** Serve SFTP requests from the local filesystem (the subset file transfer needs). */
function serveSftp(sftp: SFTPWrapper, cwd: string): void {
  const handles = new Map<number, { fd?: number; dir?: string; listed?: boolean }>();
  let next = 1;
  const newHandle = (h: { fd?: number; dir?: string }): Buffer => {
    const id = next++;
    handles.set(id, h);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    return b;
  };
  const lookup = (b: Buffer) => (b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined);
  const abs = (p: string) => path.resolve(cwd, p || ".");
  const done = (id: number) => (err: NodeJS.ErrnoException | null) => sftp.status(id, err ? errStatus(err) : STATUS_CODE.OK);
  const setAttrs = (file: string | number, a: Attributes, cb: (err: NodeJS.ErrnoException | null) => void) => {
    try {
      if (typeof a.mode === "number") (typeof file === "number" ? fs.fchmodSync(file, a.mode & 0o7777) : fs.chmodSync(file, a.mode & 0o7777));
      if (typeof a.size === "number") (typeof file === "number" ? fs.ftruncateSync(file, a.size) : fs.truncateSync(file, a.size));
      if (typeof a.mtime === "number") {
        const at = typeof a.atime === "number" ? a.atime : a.mtime;
        (typeof file === "number" ? fs.futimesSync(file, at, a.mtime) : fs.utimesSync(file, at, a.mtime));
      }
      cb(null);
    } catch (e) { cb(e as NodeJS.ErrnoException); }
  };

  sftp.on("REALPATH", (id, p) => {
    const full = abs(p);
    sftp.name(id, [{ filename: full, longname: full, attrs: {} as Attributes }]);
  });
  sftp.on("STAT", (id, p) => fs.stat(abs(p), (err, st) => (err ? sftp.status(id, errStatus(err)) : sftp.attrs(id, attrsOf(st)))));
  sftp.on("LSTAT", (id, p) => fs.lstat(abs(p), (err, st) => (err ? sftp.status(id, errStatus(err)) : sftp.attrs(id, attrsOf(st)))));
  sftp.on("FSTAT", (id, h) => {
    const e = lookup(h);
    if (e?.fd === undefined) return sftp.status(id, STATUS_CODE.FAILURE);
    fs.fstat(e.fd, (err, st) => (err ? sftp.status(id, errStatus(err)) : sftp.attrs(id, attrsOf(st))));
  });
  sftp.on("OPEN", (id, p, flags, attrs) => {
    const mode = utils.sftp.flagsToString(flags);
    if (!mode) return sftp.status(id, STATUS_CODE.OP_UNSUPPORTED);
    fs.open(abs(p), mode, typeof attrs?.mode === "number" ? attrs.mode & 0o7777 : 0o644, (err, fd) =>
      err ? sftp.status(id, errStatus(err)) : sftp.handle(id, newHandle({ fd })));
  });
  sftp.on("READ", (id, h, offset, length) => {
    const e = lookup(h);
    if (e?.fd === undefined) return sftp.status(id, STATUS_CODE.FAILURE);
    const buf = Buffer.alloc(Math.min(length, 256 * 1024));
    fs.read(e.fd, buf, 0, buf.length, offset, (err, n) => {
      if (err) return sftp.status(id, errStatus(err));
      if (n === 0) return sftp.status(id, STATUS_CODE.EOF);
      sftp.data(id, buf.subarray(0, n));
    });
  });
  sftp.on("WRITE", (id, h, offset, data) => {
    const e = lookup(h);
    if (e?.fd === undefined) return sftp.status(id, STATUS_CODE.FAILURE);
    fs.write(e.fd, data, 0, data.length, offset, (err) => done(id)(err));
  });
  sftp.on("CLOSE", (id, h) => {
    const key = h.length === 4 ? h.readUInt32BE(0) : -1;
    const e = handles.get(key);
    if (!e) return sftp.status(id, STATUS_CODE.FAILURE);
    handles.delete(key);
    if (e.fd !== undefined) fs.close(e.fd, done(id));
    else sftp.status(id, STATUS_CODE.OK);
  });
  sftp.on("SETSTAT", (id, p, a) => setAttrs(abs(p), a, done(id)));
  sftp.on("FSETSTAT", (id, h, a) => {
    const e = lookup(h);
    if (e?.fd === undefined) return sftp.status(id, STATUS_CODE.FAILURE);
    setAttrs(e.fd, a, done(id));
  });
  sftp.on("MKDIR", (id, p, a) => fs.mkdir(abs(p), { mode: typeof a?.mode === "number" ? a.mode & 0o7777 : 0o755 }, (err) => done(id)(err)));
  sftp.on("RMDIR", (id, p) => fs.rmdir(abs(p), done(id)));
  sftp.on("REMOVE", (id, p) => fs.unlink(abs(p), done(id)));
  sftp.on("RENAME", (id, from, to) => {
    // SFTP v3 rename must not replace an existing file
    if (fs.existsSync(abs(to))) return sftp.status(id, STATUS_CODE.FAILURE, "target exists");
    fs.rename(abs(from), abs(to), done(id));
  });
  sftp.on("OPENDIR", (id, p) => fs.stat(abs(p), (err, st) => {
    if (err) return sftp.status(id, errStatus(err));
    if (!st.isDirectory()) return sftp.status(id, STATUS_CODE.FAILURE, "not a directory");
    sftp.handle(id, newHandle({ dir: abs(p) }));
  }));
  sftp.on("READDIR", (id, h) => {
    const e = lookup(h);
    if (!e?.dir) return sftp.status(id, STATUS_CODE.FAILURE);
    if (e.listed) return sftp.status(id, STATUS_CODE.EOF);
    e.listed = true;
    const names = fs.readdirSync(e.dir).flatMap((n) => {
      try { const st = fs.lstatSync(path.join(e.dir!, n)); return [{ filename: n, longname: n, attrs: attrsOf(st) }]; } catch { return []; }
    });
    if (!names.length) return sftp.status(id, STATUS_CODE.EOF);
    sftp.name(id, names);
  });
}

/** Run one exec request with local bash, wired to the channel. */
function runExec(ch: ServerChannel, command: string, env: Record<string, string>, cwd: string, children: Set<ChildProcess>): void {
  const child = spawn("/bin/bash", ["-c", command], { cwd, env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  children.add(child);
  child.stdin.on("error", () => undefined);
  ch.on("data", (d: Buffer) => { child.stdin.write(d); });
  ch.on("end", () => child.stdin.end());
  child.stdout.on("data", (d: Buffer) => ch.write(d));
  child.stderr.on("data", (d: Buffer) => ch.stderr.write(d));
  let exited = false;
  child.on("error", (e) => { ch.stderr.write(`embedded box: ${e.message}\n`); });
  child.on("close", (code, signal) => {
    exited = true;
    children.delete(child);
    try {
      if (signal) ch.exit(signal.replace(/^SIG/, ""), false, "");
      else ch.exit(code ?? 255);
      ch.end();
    } catch { /* the client went away */ }
  });
  // like sshd when a session drops: the command's own process group gets a hangup
  ch.on("close", () => { if (!exited && child.pid) { try { process.kill(-child.pid, "SIGHUP"); } catch { /* gone */ } } });
}

export async function startEmbeddedBox(opts: EmbeddedBoxOptions): Promise<EmbeddedBox> {
  const root = path.resolve(opts.root);
  const boxHome = path.join(root, "box-home");
  const tmuxDir = path.join(root, "box-tmux");
  for (const d of [boxHome, tmuxDir]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });

  const hostKey = ed25519Pair();
  const userKey = ed25519Pair();
  const identity = path.join(root, "ssh", "id_ed25519");
  writeFile(identity, userKey.private);
  writeFile(`${identity}.pub`, `${userKey.public}\n`, 0o644);
  const allowed = utils.parseKey(userKey.public);
  if (allowed instanceof Error) throw allowed;
  const allowedBlob = allowed.getPublicSSH();

  const py = opts.python ? { exe: opts.python, torch: tryPython(opts.python).torch } : pickPython();
  const binDir = path.join(root, "box-bin");
  buildBin(binDir, opts.without ?? ["rsync"], py.exe);

  const marker = randomBytes(8).toString("hex");
  const user = os.userInfo().username;
  const sessionEnv: Record<string, string> = {
    HOME: boxHome,
    USER: user,
    LOGNAME: user,
    SHELL: "/bin/bash",
    PATH: binDir,
    LANG: process.env.LANG || "C.UTF-8",
    TMUX_TMPDIR: tmuxDir,
    TMPDIR: process.env.TMPDIR || "/tmp",
    RGT_DEMO_BOX: marker,
    ...(opts.env ?? {}),
  };
  const children = new Set<ChildProcess>();
  const conns = new Set<Connection>();

  const server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    conns.add(client);
    client.on("error", () => undefined);
    client.on("close", () => conns.delete(client));
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey") return ctx.reject(["publickey"]);
      const offered = ctx.key.data;
      const same = offered.length === allowedBlob.length && timingSafeEqual(offered, allowedBlob);
      if (!same || ctx.username !== user) return ctx.reject(["publickey"]);
      if (!ctx.signature) return ctx.accept(); // the client only asked whether this key would do
      const ok = allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo);
      return ok === true ? ctx.accept() : ctx.reject(["publickey"]);
    });
    client.on("ready", () => {
      client.on("session", (acceptSession) => {
        const session = acceptSession();
        const extra: Record<string, string> = {};
        session.on("env", (accept, _reject, info) => { extra[info.key] = info.val; accept?.(); });
        session.on("pty", (_accept, reject) => reject?.());
        session.on("exec", (accept, _reject, info) => {
          const ch = accept();
          runExec(ch, info.command, { ...sessionEnv, ...extra }, boxHome, children);
        });
        session.on("sftp", (accept) => serveSftp(accept(), boxHome));
      });
    });
  });
  server.on("error", () => undefined);

  const port: number = await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a ? a.port : 0);
    });
  });

  const knownHosts = path.join(root, "ssh", "known_hosts");
  writeFile(knownHosts, `[127.0.0.1]:${port} ${hostKey.public.split(/\s+/).slice(0, 2).join(" ")}\n`);
  const sshConfig = path.join(root, "ssh", "config");
  writeFile(sshConfig, [
    `Host ${opts.alias}`,
    "  HostName 127.0.0.1",
    `  Port ${port}`,
    `  User ${user}`,
    `  IdentityFile ${identity}`,
    "  IdentitiesOnly yes",
    "  IdentityAgent none",
    `  UserKnownHostsFile ${knownHosts}`,
    "  GlobalKnownHostsFile /dev/null",
    "  StrictHostKeyChecking yes",
    "  BatchMode yes",
    "  ConnectTimeout 5",
    "  LogLevel ERROR",
    "",
  ].join("\n"));

  let stopped = false;
  const livePids = () => pidsWithMarker("RGT_DEMO_BOX", marker);
  return {
    port,
    sshConfig,
    knownHosts,
    identity,
    boxHome,
    python: py.exe,
    torch: py.torch,
    livePids,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const c of conns) { try { c.end(); } catch { /* gone */ } }
      await new Promise<void>((res) => server.close(() => res()));
      // only this box's tmux server: its socket named explicitly, and no $TMUX that could point elsewhere
      const sock = path.join(tmuxDir, `tmux-${process.getuid?.() ?? 0}`, "default");
      if (fs.existsSync(sock)) {
        const env: NodeJS.ProcessEnv = { ...process.env, TMUX_TMPDIR: tmuxDir };
        delete env.TMUX;
        spawnSync("tmux", ["-S", sock, "kill-server"], { env, stdio: "ignore", timeout: 5000 });
      }
      for (let round = 0; round < 3; round++) {
        const left = [...new Set([...livePids(), ...[...children].map((c) => c.pid ?? 0).filter(Boolean)])];
        if (!left.length) break;
        for (const pid of left) { try { process.kill(pid, round === 0 ? "SIGTERM" : "SIGKILL"); } catch { /* gone */ } }
        await new Promise((r) => setTimeout(r, 300));
      }
    },
  };
}
