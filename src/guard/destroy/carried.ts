/**
 * Commands carried inside another program's options or environment, which that program runs itself:
 * tar --checkpoint-action=exec= / --to-command / -I, rsync -e / --rsync-path, ssh -o ProxyCommand /
 * LocalCommand, git -c core.sshCommand / core.pager / alias.x=!…, vim -c '!…', sed's `e` command, and
 * GIT_SSH_COMMAND= / PAGER= / EDITOR= / BASH_ENV= style variables. Each carried text is judged as a command.
 */
import { UNKNOWN, type Word } from "../shell.js";
import { push, words, type At, type State } from "./state.js";

/** variables whose value some program runs as a command */
const COMMAND_VARS = /^(GIT_SSH_COMMAND|GIT_SSH|GIT_PAGER|GIT_EDITOR|GIT_SEQUENCE_EDITOR|GIT_EXTERNAL_DIFF|GIT_ASKPASS|SSH_ASKPASS|SUDO_ASKPASS|PAGER|MANPAGER|EDITOR|VISUAL|LESSOPEN|LESSCLOSE|PROMPT_COMMAND|BASH_ENV|ENV|RSYNC_RSH|TAR_COMPRESS_PROGRAM)=([\s\S]+)$/;

export function judgeCommandVars(argv: Word[], at: At, st: State): void {
  for (const w of argv) {
    const m = COMMAND_VARS.exec(w.text);
    if (!m) { if (/^[A-Za-z_][A-Za-z0-9_]*\+?=/.test(w.text)) continue; break; }
    judgeCarried(m[2]!, `${m[1]}=`, at, st);
  }
}

function judgeCarried(text: string, via: string, at: At, st: State): void {
  if (text.includes(UNKNOWN)) { push(st, "obfuscated", via, "a program is handed a command that is computed at run time; what it runs cannot be read here"); return; }
  st.text(text, at.depth + 1);
}

/** the value of `--opt=V` / `--opt V` / `-oV` among `texts` for the option names given */
function optValues(texts: string[], long: string[], short: string[]): string[] {
  const out: string[] = [];
  for (let j = 0; j < texts.length; j++) {
    const t = texts[j]!;
    for (const l of long) {
      if (t === l && j + 1 < texts.length) out.push(texts[j + 1]!);
      else if (t.startsWith(l + "=")) out.push(t.slice(l.length + 1));
    }
    for (const s of short) {
      if (t === s && j + 1 < texts.length) out.push(texts[j + 1]!);
      else if (t.startsWith(s) && t.length > s.length && !t.startsWith("--")) out.push(t.slice(s.length));
    }
  }
  return out;
}

/** judge the commands `name` would run from its options; true when it was one of these programs */
export function checkCarried(name: string, rest: Word[], at: At, st: State): void {
  const texts = words(rest);
  switch (name) {
    case "tar": case "gtar": case "bsdtar":
      for (const v of optValues(texts, ["--checkpoint-action"], [])) { const m = /^(?:exec|execute)=([\s\S]+)$/.exec(v); if (m) judgeCarried(m[1]!, "tar --checkpoint-action", at, st); }
      for (const v of optValues(texts, ["--to-command", "--use-compress-program", "--info-script", "--new-volume-script"], ["-I", "-F"])) judgeCarried(v, `tar ${v.slice(0, 20)}`, at, st);
      return;
    case "rsync":
      for (const v of optValues(texts, ["--rsh", "--rsync-path"], ["-e"])) judgeCarried(v, "rsync -e", at, st);
      return;
    case "ssh": case "scp": case "sftp": case "autossh":
      for (const v of optValues(texts, [], ["-o"])) {
        const m = /^\s*(ProxyCommand|LocalCommand|KnownHostsCommand|RemoteCommand)\s*[= ]\s*([\s\S]+)$/i.exec(v);
        if (m && m[2]!.trim().toLowerCase() !== "none") judgeCarried(m[2]!, `${name} -o ${m[1]}`, at, st);
      }
      return;
    case "git":
      for (const v of optValues(texts, ["--config-env"], ["-c"])) {
        const m = /^(core\.sshcommand|core\.pager|core\.editor|core\.fsmonitor|core\.hookspath|diff\.external|sequence\.editor|credential\.helper|alias\.[^=]+|pager\.[^=]+|uploadpack\.packobjectshook|ssh\.variant)=([\s\S]*)$/i.exec(v);
        if (!m) continue;
        const key = m[1]!.toLowerCase();
        const val = m[2]!;
        if (key.startsWith("alias.") || key === "credential.helper") { if (val.startsWith("!")) judgeCarried(val.slice(1), `git -c ${key}`, at, st); }
        else if (key === "core.hookspath") push(st, "obfuscated", "git -c core.hooksPath", "runs hooks from a directory named at run time; what they do cannot be read here");
        else judgeCarried(val, `git -c ${key}`, at, st);
      }
      return;
    case "vim": case "vi": case "nvim": case "ex": case "view": case "vimdiff": {
      const cmds = [...optValues(texts, ["--cmd"], ["-c"]), ...texts.filter((t) => t.startsWith("+")).map((t) => t.slice(1))];
      for (const c of cmds) { const m = /^:?\s*(?:silent!?\s*)?!([\s\S]+)$|\bsystem\s*\(\s*["']([^"']+)["']/.exec(c); if (m) judgeCarried(m[1] ?? m[2]!, `${name} -c !`, at, st); }
      return;
    }
    case "sed": case "gsed": {
      // GNU sed runs `e COMMAND` (and the `e` flag of s///) through the shell
      const scripts = [...optValues(texts, ["--expression"], ["-e"])];
      if (scripts.length === 0) { const p = texts.find((t) => !t.startsWith("-")); if (p) scripts.push(p); }
      for (const s of scripts) {
        const m = /(?:^|[;\n{}]|^\s*[0-9$]+|\/\s*)\s*e\s+([^;\n}]+)/.exec(s);
        if (m) judgeCarried(m[1]!, "sed e", at, st);
        if (/(?:^|[;\n])\s*[0-9$,]*\s*s(.)(?:(?!\1).)*\1(?:(?!\1).)*\1[gpiIm0-9]*e/.test(s)) push(st, "obfuscated", "sed s///e", "sed runs the pattern space as a shell command; what it runs cannot be read here");
      }
      return;
    }
    case "zip":
      for (const v of optValues(texts, ["--unzip-command"], ["-TT"])) judgeCarried(v, "zip -TT", at, st);
      return;
  }
}
