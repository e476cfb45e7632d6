/**
 * Never change a file under a live run (ARCHITECTURE principle 7). `changedUnder` answers which of a
 * push's files would overwrite an existing file on the box with other content; `guardLiveRuns` refuses
 * LIVE_SCRIPT_MUTATION when any of those lies in the workdir of a run still live there.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { refuse, RefusalError } from "../common/result.js";
import type { Remote } from "../remote/types.js";
import type { Ledger } from "../ledger/store.js";
import { listRuns } from "../ledger/runs.js";
import { liveRunsOn } from "../backends/index.js";
import { remoteHashTree } from "../remote/hashes.js";
import { decodeRsyncNameStrict, dieWithParent, filesFromList, onBufferLines, rsyncShellArg, spawnTied, withTempDir } from "../remote/rsync.js";
import { sha256FileSync } from "../verify/hash.js";

const posixInside = (p: string, dir: string): boolean => dir === "/" || p === dir || p.startsWith(`${dir}/`);
const trimSlash = (p: string): string => (p.length > 1 ? p.replace(/\/+$/, "") : p);

interface LiveWorkdir { run_id: string; workdir: string; cells: string[] }
interface Ctx { remote: Remote; ledger: Ledger; signal: AbortSignal }

/**
 * Runs recorded for this box (under any spelling of the host that resolves to the same endpoint) whose
 * workdir, resolved on the box, is the push destination, lies inside it or contains it — and that still
 * have live cells. One round trip to resolve the workdirs, then liveRunsOn (which fails closed: an
 * unreachable host throws rather than answering "nothing live").
 */
async function liveWorkdirsAt(ctx: Ctx, host: string, dest: string): Promise<LiveWorkdir[]> {
  const all = listRuns(ctx.ledger).slice(0, 200);
  if (!all.length) return [];
  const me = await ctx.remote.resolve(host).then((h) => h.key, () => undefined);
  const sameBox = new Map<string, boolean>();
  const matches = async (h: string): Promise<boolean> => {
    if (h === host) return true;
    if (!me) return false;
    if (!sameBox.has(h)) sameBox.set(h, await ctx.remote.resolve(h).then((r) => r.key === me, () => false));
    return sameBox.get(h)!;
  };
  const byHost = new Map<string, typeof all>();
  for (const run of all) {
    for (const h of new Set([...run.hosts, ...run.cells.map((c) => c.host)])) {
      if (!(await matches(h))) continue;
      if (!byHost.has(h)) byHost.set(h, []);
      byHost.get(h)!.push(run);
    }
  }
  if (!byHost.size) return [];
  const workdirs = [...new Set([...byHost.values()].flat().map((r) => r.workdir))];
  const r = await ctx.remote.runScript(host, "resolve_dirs.sh", workdirs, { timeoutMs: 30_000 });
  if (r.timedOut) throw new RefusalError("TIMEOUT", `checking ${host} for live runs under ${dest} timed out`, "Retry; check the box with probe_env.");
  const resolved = new Map<string, string>();
  for (const m of r.stdout.matchAll(/^WD\t(\d+)\t(.+)$/gm)) resolved.set(workdirs[Number(m[1])], trimSlash(m[2]));
  const d = trimSlash(dest);
  const out: LiveWorkdir[] = [];
  for (const [h, runs] of byHost) {
    // a workdir that no longer exists on the box cannot be read by anything running there
    const overlapping = runs.filter((run) => {
      const w = resolved.get(run.workdir);
      return w !== undefined && (posixInside(d, w) || posixInside(w, d));
    });
    if (!overlapping.length) continue;
    const ids = new Set(overlapping.map((x) => x.run_id));
    for (const live of await liveRunsOn(ctx.remote, ctx.ledger, h)) {
      if (!ids.has(live.run_id) || out.some((o) => o.run_id === live.run_id)) continue;
      out.push({ run_id: live.run_id, workdir: resolved.get(overlapping.find((x) => x.run_id === live.run_id)!.workdir)!, cells: live.cells_running });
    }
  }
  return out;
}

/**
 * Of `files` (relative to the destination), those the push would change — existing files on the box whose
 * content differs — judged by rsync itself: a dry run with --checksum over the same file list, itemized.
 * Only a line for an existing file counts ("+++++++++" marks a file that does not exist yet).
 * Resolves undefined when rsync could not answer (the caller then compares hashes instead).
 */
async function rsyncWouldChange(remote: Remote, host: string, localDir: string, remoteDir: string, files: string[],
  timeoutMs: number): Promise<string[] | undefined> {
  const transport = await remote.sshTransport(host);
  return withTempDir("rgt-live-", (tmp) => {
    const list = path.join(tmp, "files");
    fs.writeFileSync(list, filesFromList(files), { mode: 0o600 });
    return new Promise((resolve) => {
      const child = spawnTied([
        "rsync", "-rlpt", "-8", "-n", "--checksum", "--no-inc-recursive", "--timeout=60", "--out-format=RGTI:%i %n",
        "-e", rsyncShellArg([...dieWithParent(), ...transport.argv]), "--from0", `--files-from=${list}`,
        "--", `${localDir.replace(/\/+$/, "")}/`, `${transport.destination}:${remoteDir.replace(/\/+$/, "")}/`,
      ]);
      const changed: string[] = [];
      const flush = onBufferLines(child.stdout!, (raw) => {
        const m = /^RGTI:([<>ch.])([fLDS])(\S{9}) /.exec(raw.toString("latin1"));
        if (!m || m[3] === "+++++++++" || m[2] === "D") return;
        // `<f` (sent to the box) / `cL`: data or a link target goes over an existing path; `.f` = attributes only
        if (m[1] === "<" || m[1] === ">" || m[1] === "c") changed.push(decodeRsyncNameStrict(raw.subarray(m[0].length)) ?? raw.subarray(m[0].length).toString("utf8"));
      });
      child.stderr!.resume();
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.on("error", () => { clearTimeout(timer); resolve(undefined); });
      child.on("close", (code) => { clearTimeout(timer); flush(); resolve(code === 0 ? changed : undefined); });
    });
  });
}

/**
 * The files that exist on the box with other content than here, by hashes: the box hashes the ones it
 * has (one round trip), we hash ours. `sameSize`: the sizes agree, so only the bytes tell (what SFTP's
 * whole-second size + mtime check cannot see).
 */
export async function differingOnBox(ctx: Ctx, host: string, localDir: string, remoteDir: string, files: { path: string; bytes: number;
  link?: string }[]): Promise<{ path: string; sameSize: boolean }[]> {
  const plain = files.filter((f) => f.link === undefined);
  if (!plain.length) return [];
  const tree = await remoteHashTree(ctx.remote, host, remoteDir, plain.map((f) => f.path), { timeoutMs: 300_000, signal: ctx.signal });
  const there = new Map(tree.files.map((f) => [f.path, f]));
  const out: { path: string; sameSize: boolean }[] = [];
  for (const f of plain) {
    const r = there.get(f.path);
    if (!r) continue; // not on the box yet: adding it changes nothing a run reads
    if (r.bytes !== f.bytes) out.push({ path: f.path, sameSize: false });
    else if (r.sha256 !== sha256FileSync(path.join(localDir, f.path))) out.push({ path: f.path, sameSize: true });
  }
  return out;
}

/** Which of `files` would overwrite an existing file on the box with other content. */
export async function changedUnder(
  ctx: Ctx, host: string, localDir: string, remoteDir: string, files: { path: string; bytes: number; link?: string }[], useRsync: boolean,
): Promise<string[]> {
  let changed: string[] | undefined;
  if (useRsync) {
    const bytes = files.reduce((a, f) => a + f.bytes, 0);
    changed = await rsyncWouldChange(ctx.remote, host, localDir, remoteDir, files.map((f) => f.path), 120_000 + Math.ceil(bytes / 50_000));
  }
  return changed ?? (await differingOnBox(ctx, host, localDir, remoteDir, files)).map((d) => d.path);
}

/**
 * Refuse LIVE_SCRIPT_MUTATION when the push would change a file under the workdir of a run still live on
 * this box. Only changes to EXISTING files count: a brand-new file is something no running process has
 * opened, so adding it is allowed; and push_code never deletes (no --delete), so removals cannot happen.
 * A run that is done, failed or stopped does not hold its workdir.
 */
export async function guardLiveRuns(
  ctx: Ctx, host: string, remoteDirArg: string, dest: string, localDir: string, files: { path: string; bytes: number; link?: string }[], useRsync: boolean,
): Promise<void> {
  const live = await liveWorkdirsAt(ctx, host, dest);
  if (!live.length) return;
  const d = trimSlash(dest);
  const under = files.filter((f) => live.some((l) => posixInside(path.posix.join(d, f.path), l.workdir)));
  if (!under.length) return;
  const changed = await changedUnder(ctx, host, localDir, d, under, useRsync);
  if (!changed.length) return;
  const hit = live.filter((l) => changed.some((f) => posixInside(path.posix.join(d, f), l.workdir)));
  const first = hit[0] ?? live[0];
  const shown = changed.slice(0, 5);
  const versioned = `${trimSlash(remoteDirArg)}-v2`;
  refuse(
    "LIVE_SCRIPT_MUTATION",
    `${changed.length} file(s) in ${d} would be overwritten under live run ${first.run_id} (workdir ${first.workdir}, running: ${first.cells.slice(0, 5).join(", ") || "?"}): ` +
      `${shown.join(", ")}${changed.length > shown.length ? ", …" : ""}. Nothing was sent.`,
    `Push the changed tree to a new versioned directory instead (e.g. remote_dir "${versioned}") and launch from there; ` +
      `or stop_run { run_id: "${first.run_id}" } first (its files are kept). Files that do not exist on the box yet may be added while it runs.`,
    { run_ids: hit.map((l) => l.run_id), changed_files: changed.slice(0, 20), remote_dir: d },
  );
}
