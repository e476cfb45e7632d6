/**
 * Powering the machine off or rebooting it, now or later: shutdown/poweroff/halt/reboot, init/telinit
 * 0|6, systemctl and loginctl power verbs and targets, D-Bus PowerOff/Reboot calls, and any command
 * scheduled through cron or at (its text is judged like a command of its own).
 */
import { lit, positionals, push, words, type At, type State } from "./state.js";
import { OPAQUE } from "./state.js";
import { UNKNOWN, parseLine, type Word } from "../shell.js";
import { echoText, printfText } from "./opaque.js";

const POWER_VERB = /^(poweroff|halt|reboot|kexec|soft-reboot|emergency|rescue|suspend|hibernate|hybrid-sleep|suspend-then-hibernate)$/;
const POWER_TARGET = /^(poweroff|reboot|halt|kexec|emergency|rescue|shutdown|ctrl-alt-del|soft-reboot)\.target$/;

export function checkPower(name: string, rest: Word[], at: At, st: State): boolean {
  const texts = words(rest);
  switch (name) {
    case "shutdown":
      if (!texts.some((t) => t === "-c" || t === "--help" || t === "-k" || t === "--show")) push(st, "power", "shutdown", "powers the machine off");
      return true;
    case "poweroff": case "halt": case "reboot": case "kexec":
      if (!texts.includes("--help")) push(st, "power", name, name === "reboot" ? "reboots the machine (every detached job and tmpfs dies)" : "powers the machine off");
      return true;
    case "init": case "telinit": case "runlevel": {
      const lvl = texts.find((t) => /^[06sS]$/.test(t));
      if (lvl) push(st, "power", `${name} ${lvl}`, "changes runlevel to power off / reboot / single user");
      return true;
    }
    case "systemctl": case "loginctl": {
      const pos = positionals(texts, new Set(["-H", "--host", "-M", "--machine", "-t", "--type", "-p", "--property", "--signal", "-s"]));
      const verb = pos[0];
      if (verb && POWER_VERB.test(verb)) push(st, "power", `${name} ${verb}`, "powers off / reboots the machine");
      else if (name === "loginctl" && verb && /^(terminate|kill)-(user|session|seat)$/.test(verb)) push(st, "kill", `loginctl ${verb}`, "ends every process of a user or session, every run with them");
      else if (verb && /^(isolate|start|restart|reload-or-restart|try-restart|enable)$/.test(verb) && pos.some((t) => POWER_TARGET.test(t))) push(st, "power", `${name} ${verb}`, "switches to a power-off/reboot target");
      else if (name === "systemctl" && verb && /^(stop|kill|mask|disable)$/.test(verb) && pos.some((t) => /^(ssh|sshd|openssh-server)(\.service)?$/.test(t))) push(st, "lockout", `systemctl ${verb} sshd`, "cuts every way back into the box");
      return true;
    }
    case "service": case "rc-service": {
      const pos = positionals(texts);
      if (/^(ssh|sshd|openssh-server|openssh)$/.test(pos[0] ?? "") && /^(stop|disable|mask|kill)$/.test(pos[1] ?? "")) push(st, "lockout", `service ${pos[0]} ${pos[1]}`, "cuts every way back into the box");
      return true;
    }
    case "iptables": case "ip6tables": case "iptables-legacy": case "iptables-nft": {
      const p = texts.findIndex((t) => t === "-P" || t === "--policy");
      const jump = texts.findIndex((t) => t === "-j" || t === "--jump");
      if ((p >= 0 && /^(INPUT|OUTPUT)$/.test(texts[p + 1] ?? "") && /^(DROP|REJECT)$/.test(texts[p + 2] ?? "")) || (jump >= 0 && /^(DROP|REJECT)$/.test(texts[jump + 1] ?? "") && texts.some((t) => /^(INPUT|OUTPUT)$/.test(t)))) push(st, "lockout", name, "firewall rule that drops traffic to the box: ssh (this server and you) can be cut off");
      return true;
    }
    case "ip": case "ifdown": case "ifconfig": case "route": case "nmcli": {
      const t = texts.join(" ");
      if (name === "ifdown" || (name === "ip" && /\blink\s+set\b.*\bdown\b|\broute\s+(del|delete|flush)\b/.test(t)) || (name === "ifconfig" && /\bdown\b/.test(t)) || (name === "route" && /\bdel\b.*\bdefault\b/.test(t)) || (name === "nmcli" && /\b(down|off|disconnect)\b/.test(t))) push(st, "lockout", name, "takes the box's network down: ssh (this server and you) is cut off");
      return name !== "ip";
    }
    case "ufw": {
      const pos = positionals(texts);
      if (pos[0] === "enable" || pos[0] === "deny" || pos[0] === "reject" || (pos[0] === "default" && /^(deny|reject)$/.test(pos[1] ?? ""))) push(st, "lockout", `ufw ${pos[0]}`, "firewall change that can cut ssh to the box off");
      return true;
    }
    case "passwd": case "usermod": case "chage": case "chsh": {
      if (texts.some((t) => /^(-l|--lock|-L|-d|--delete|-e|--expire|--expiredate|-E)$/.test(t)) || (name === "chsh" || name === "usermod") && texts.some((t) => /nologin|\/bin\/false$/.test(t))) push(st, "lockout", `${name} ${texts.find((t) => t.startsWith("-")) ?? ""}`.trim(), "locks or expires an account the box is reached with");
      return true;
    }
    case "busctl": case "dbus-send": case "gdbus": case "qdbus":
      if (texts.some((t) => /(PowerOff|Reboot|Halt|KExec)\b/.test(t))) push(st, "power", name, "asks logind/systemd over D-Bus to power off or reboot");
      return true;
    case "crontab": {
      // `… | crontab -`: the schedule's commands are judged; a schedule we cannot read is refused
      const pos = positionals(texts, new Set(["-u"]));
      if (texts.some((t) => /^-[lr]$/.test(t))) return true;
      const added = at.fed == null && pos[0] === "-" ? appendedCron(st.line) : null;
      if ((typeof at.fed === "string" && at.fed !== OPAQUE)) judgeCronText(at.fed, at, st);
      // `(crontab -l; echo "LINE") | crontab -`: the existing table plus LINE
      else if (added !== null) judgeCronText(added, at, st);
      else if (at.fed === OPAQUE || pos.length === 0 || pos[0] === "-") push(st, "obfuscated", "crontab", "installs a schedule whose commands cannot be read here");
      else {
        // `crontab FILE`: a file written on this line or pushed is judged; any other file cannot be read here
        const abs = st.resolvePath(pos[0]!);
        const body = (abs ? st.written.get(abs) : undefined) ?? st.readPushed(pos[0]!);
        if (typeof body === "string") judgeCronText(body, at, st);
        else push(st, "obfuscated", "crontab FILE", `installs the schedule in ${pos[0]}, whose commands cannot be read here`);
      }
      return true;
    }
    case "at": case "batch": {
      if (texts.some((t) => /^-[lrdc]$/.test(t))) return true;
      const fi = texts.indexOf("-f");
      if (fi >= 0) {
        // `at -f FILE`: the job is the file, judged when written on this line or pushed, else unreadable
        const f = texts[fi + 1] ?? "";
        const abs = st.resolvePath(f);
        const body = (abs ? st.written.get(abs) : undefined) ?? st.readPushed(f);
        if (typeof body === "string") st.text(body, at.depth + 1);
        else push(st, "obfuscated", `${name} -f`, `schedules the commands of ${f || "a file"}, which cannot be read here`);
      } else if ((typeof at.fed === "string" && at.fed !== OPAQUE)) st.text(at.fed, at.depth + 1);
      else push(st, "obfuscated", name, "schedules commands that cannot be read here");
      return true;
    }
  }
  return false;
}

/** the lines `(crontab -l [2>/dev/null]; echo|printf …) | crontab -` adds to the table, when literal; else null */
function appendedCron(line: string): string | null {
  const m = /\(\s*crontab\s+-l(?:\s+2>\s*\/dev\/null)?\s*(?:\|\|\s*true\s*)?;\s*((?:echo|printf)\s[^()$`|;&]*)\)\s*\|\s*crontab\s+-(?:\s|$)/.exec(line);
  if (!m) return null;
  const c = parseLine(m[1]!, new Map()).pipelines[0]?.[0];
  if (!c || c.argv.some((w) => w.text.includes(UNKNOWN))) return null;
  return c.argv[0]!.text === "echo" ? echoText(c.argv.slice(1)) : printfText(words(c.argv.slice(1)));
}

/** cron lines: five time fields (or @reboot …) then the command */
export function judgeCronText(text: string, at: At, st: State, userField = false): void {
  for (const line of text.split("\n")) {
    const l = line.trim();
    if (!l || l.startsWith("#") || /^[A-Za-z_][A-Za-z0-9_]*=/.test(l)) continue;
    const m = userField ? /^(?:@\w+\s+|(?:\S+\s+){5})\S+\s+([\s\S]*)$/.exec(l) : /^(?:@\w+|(?:\S+\s+){5})([\s\S]*)$/.exec(l);
    st.text(m ? m[1]! : l, at.depth + 1);
  }
}

/** text written where cron will run it (`echo '…' > /etc/cron.d/x`, >> /var/spool/cron/…) */
/** shell startup files: text written there runs at the next login (`echo 'poweroff' >> ~/.bashrc`) */
export function isStartupPath(p: string, home: string): boolean {
  const h = home.replace(/\/+$/, "");
  return new RegExp(`^(${h.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}|/root|/home/[^/]+)/\\.(bashrc|bash_profile|bash_login|bash_logout|profile|zshrc|zprofile|zshenv|zlogin|kshrc|config/fish/config\\.fish)$|^/etc/(profile|bash\\.bashrc|bashrc|zsh/zshrc|environment|rc\\.local)$|^/etc/profile\\.d/`).test(p);
}

export function isCronPath(p: string): boolean {
  return /^\/(etc\/cron(tab|\.d|\.hourly|\.daily|\.weekly|\.monthly)|var\/spool\/cron)/.test(p);
}

export { lit };
