/**
 * What every destroy check shares: the findings list, the analysis state (variables and cwd as the line
 * has set them so far, the protected paths) and the two entry points back into the analyzer, handed in
 * by core.ts so the class files never import it (no cycles).
 */
import { UNKNOWN, type SimpleCommand, type Word } from "../shell.js";

export type DestroyKind = "instance" | "power" | "k8s" | "scancel" | "kill" | "delete" | "truncate" | "disk" | "lockout" | "obfuscated";

export interface DestroyFinding {
  kind: DestroyKind;
  /** the verb as written after unwrapping, e.g. "rm -rf", "vastai destroy", "scancel" */
  verb: string;
  /** one short line: what it would hit and why that is protected */
  detail: string;
}

export interface DestroyContext {
  /** data/durable dirs of the host's profile and any run's output dirs (absolute) */
  protectedPaths: string[];
  /** Slurm (or other scheduler) job ids of runs this server started */
  ownJobIds?: string[];
  /** working directory the command will run in, when known */
  cwd?: string;
  /** the remote user's home; default /root (rental boxes log in as root) */
  home?: string;
  /** variables the box will have set for the command (a cell's env map) */
  env?: Record<string, string>;
  /**
   * The local text of a file of the tree this server pushed to the box, by its absolute remote path;
   * undefined when the path is not part of a push. Scripts run from the pushed tree are read and judged.
   */
  pushedFile?: (remotePath: string) => string | undefined;
}

/** One command being judged, with where it sits. */
export interface At {
  cmd: SimpleCommand;
  pipeline: SimpleCommand[];
  k: number;
  depth: number;
  /** what this command reads on stdin when it is literal text (here-doc, here-string, `echo … |`), "opaque" when transformed */
  fed?: string | null;
}

export interface State {
  env: Map<string, string>;
  cwd: string | null;
  home: string;
  ctx: DestroyContext;
  protectedNorm: string[];
  out: DestroyFinding[];
  /** scripts already read from the pushed tree (a script that runs itself is read once) */
  readScripts: Set<string>;
  /** bodies of the command substitutions of the line being judged */
  subs: string[];
  /** the text being judged right now (a nested text while it is judged) */
  line: string;
  /** aliases defined earlier on the line: name → the text it expands to */
  aliases: Map<string, string>;
  /** files written earlier on the line: absolute path → their literal text (null: written with text we cannot read) */
  written: Map<string, string | null>;
  /** a path word made absolute against the line's cwd and home; null when it cannot be */
  resolvePath(p: string): string | null;
  /** the local text of a script of the pushed tree named by this word (resolved against cwd), read once */
  readPushed(pathText: string): string | undefined;
  /** judge a nested command line (bash -c, eval, ssh, a here-doc …) */
  text(src: string, depth: number): void;
  /** judge one argv (find -exec, xargs, docker exec …) in the place of `at` */
  argv(argv: Word[], at: At): void;
}

export const MAX_DEPTH = 8;

/** stands for "text was fed, but through a decoder/transformer" */
export const OPAQUE = "\u0002opaque";

export function push(st: State, kind: DestroyKind, verb: string, detail: string): void {
  if (st.out.length < 50) st.out.push({ kind, verb: verb.replaceAll(UNKNOWN, "<?>").slice(0, 80), detail: detail.replaceAll(UNKNOWN, "<?>").slice(0, 200) });
}

export function words(ws: Word[]): string[] {
  return ws.map((w) => w.text);
}

export function lit(text: string): Word {
  return { text, glob: false, brace: false };
}

export function quoteWord(w: Word): string {
  return `'${w.text.replace(/'/g, "'\\''")}'`;
}

/** positional words of an argv tail: not options, and not the value of an option that takes one */
export function positionals(texts: string[], withArg: Set<string> = new Set()): string[] {
  const out: string[] = [];
  for (let j = 0; j < texts.length; j++) {
    const t = texts[j]!;
    if (t === "--") { out.push(...texts.slice(j + 1)); break; }
    if (t.startsWith("-") && t.length > 1) {
      if (withArg.has(t)) j++;
      continue;
    }
    out.push(t);
  }
  return out;
}
