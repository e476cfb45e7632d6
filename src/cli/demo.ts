/**
 * `rgt demo`: the whole lifecycle against a local box the demo starts and removes by itself.
 *
 *   rgt demo [--box sshd|embedded]
 *
 * Default box: the system OpenSSH sshd on loopback in a private namespace when running as root with
 * openssh-server installed, else a small embedded ssh2 server (see src/demo/embedded.ts). The server
 * under demonstration is the real built one (`dist/cli/main.js serve`), driven over stdio by the MCP
 * client, with its own ssh config, known_hosts and RGT_HOME in a temp dir. Exit 0 only when every
 * step did what it should; the first step that did not is named and the exit status is 1.
 *
 * RGT_DEMO_PROVIDER_LOG=<file> makes the stub provider CLI record into that file (for tests).
 */
import { defaultBoxKind, startDemoBox, type BoxKind, type DemoBox } from "../demo/boxes.js";
import { DemoFailure, runLifecycle } from "../demo/lifecycle.js";
import { Transcript } from "../demo/transcript.js";
import { setting } from "../common/config.js";

function usage(): string {
  return "usage: rgt demo [--box sshd|embedded]\n";
}

export async function run(argv: string[]): Promise<number> {
  let kind: BoxKind | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") { process.stdout.write(usage()); return 0; }
    const v = a === "--box" ? argv[++i] : a.startsWith("--box=") ? a.slice(6) : undefined;
    if (v === "sshd" || v === "embedded") { kind = v; continue; }
    process.stderr.write(`rgt demo: bad argument ${JSON.stringify(a)}${a === "--box" || a.startsWith("--box=") ? " (--box takes sshd or embedded)" : ""}\n${usage()}`);
    return 2;
  }
  const chosen = kind !== undefined;
  kind ??= defaultBoxKind();
  const out = new Transcript();
  out.say("rgt demo — one training sweep on a box the demo rents from itself, the way an agent drives this server.");
  out.say("Every numbered line is one MCP tool call to the real server over stdio (time · size of the result an agent reads).");
  out.say("");

  let box: DemoBox | undefined;
  let code = 0;
  const onSignal = () => { void (box?.stop() ?? Promise.resolve()).finally(() => process.exit(130)); };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    try {
      box = await startDemoBox(kind, { providerLog: setting("RGT_DEMO_PROVIDER_LOG") });
    } catch (e) {
      const msg = (e instanceof Error ? e.message : String(e)).split("\n")[0];
      if (kind === "sshd" && !chosen) {
        out.say(`(the system sshd box did not start: ${msg}; using the embedded ssh2 box instead)`);
        try {
          box = await startDemoBox("embedded", { providerLog: setting("RGT_DEMO_PROVIDER_LOG") });
        } catch (e2) {
          process.stderr.write(`rgt demo: could not start the embedded box either: ${e2 instanceof Error ? e2.message : String(e2)}\n`);
          return 1;
        }
      } else {
        process.stderr.write(`rgt demo: could not start the ${kind} box: ${msg}${kind === "sshd" ? " (try: rgt demo --box embedded)" : ""}\n`);
        return 1;
      }
    }
    out.say(`box: ${box.describe} (ssh alias ${box.host}, up after ${out.elapsedS()} s)`);
    out.say(`ssh config, known_hosts, key and server state: ${box.stateDir} (your ~/.ssh is not used; all of it is removed at the end)`);
    out.say("");
    const res = await runLifecycle(box, out);
    out.say("");
    const calls = box.providerCalls();
    out.say(`provider CLI (a stub vastai that records its arguments): ${calls.length} call(s) — nothing was destroyed, nothing approved.`);
    if (calls.length) { code = 1; out.say(`UNEXPECTED: the provider CLI was called: ${calls.join(" | ")}`); }
    out.say(`done in ${out.elapsedS()} s: ${out.economyLine()} (${res.status_polls} status check${res.status_polls === 1 ? "" : "s"}).`);
  } catch (e) {
    code = 1;
    out.say("");
    if (e instanceof DemoFailure) out.say(`DEMO FAILED: ${e.message}`);
    else out.say(`DEMO FAILED (unexpected error): ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    out.say(`after ${out.economyLine()}`);
  } finally {
    await box?.stop().catch((e) => { code = 1; process.stderr.write(`rgt demo: cleanup failed: ${e}\n`); });
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    if (box) out.say("cleanup: box stopped, temp dirs removed.");
  }
  return code;
}
