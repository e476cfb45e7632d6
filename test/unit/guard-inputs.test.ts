/**
 * The input guard over a generated adversarial corpus (test/helpers/guardCorpus.ts): every positive of
 * every class refused with its code through BOTH remote_exec and launch_queue fields, every negative
 * (look-alikes, ordinary ML commands) passed. Prints the per-class table the README quotes; with
 * RGT_GUARD_TABLE=<file> it also writes it there.
 */
import * as fs from "node:fs";
import { describe, expect, test } from "vitest";
import { guardInputs, harmfulDir, type GuardContext } from "../../src/guard/inputs.js";
import { OWN_JOBS, PROTECTED, PUSHED, negatives, positives, type GuardItem } from "../helpers/guardCorpus.js";

const ctx: GuardContext = { protectedPaths: PROTECTED, ownJobIds: OWN_JOBS, pushedFile: (p) => PUSHED[p] };

function viaExec(it: GuardItem) {
  const env = Object.entries(it.env ?? {}).map(([k, v]) => `export ${k}='${v}'; `).join("");
  return guardInputs("remote_exec", { host: "x.invalid", command: env + it.command, cwd: "/root/proj" }, ctx);
}
function viaQueue(it: GuardItem) {
  return guardInputs("launch_queue", { host: "x.invalid", run_name: "corpus", workdir: "/root/proj", cells: [{ name: "c1", command: it.command, ...(it.env ? { env: it.env } : {}) }] }, ctx);
}

const P = positives();
const N = negatives();

describe("guard corpus", () => {
  test(`sizes: ${P.length} positives, ${N.length} negatives`, () => {
    expect(P.length).toBeGreaterThanOrEqual(600);
    expect(N.length).toBeGreaterThanOrEqual(P.length);
    const classes = new Set(P.map((p) => p.cls));
    expect(classes.size).toBeGreaterThanOrEqual(15);
  });

  test("100% of positives refused with the class's code, 0 negatives refused, through both tools", () => {
    const rows = new Map<string, { n: number; caught: number; missed: number; fr: number }>();
    const missed: string[] = [];
    const falses: string[] = [];
    for (const it of [...P, ...N]) {
      for (const [tool, f] of [["remote_exec", viaExec], ["launch_queue", viaQueue]] as const) {
        if (it.cellOnly && tool === "remote_exec") continue;
        const r = f(it);
        const row = rows.get(it.cls) ?? { n: 0, caught: 0, missed: 0, fr: 0 };
        row.n++;
        if (it.code === null) {
          if (r) { row.fr++; falses.push(`${tool} [${it.how}] ${JSON.stringify(it.command).slice(0, 160)} -> ${r.code}: ${r.reason.slice(0, 160)}`); }
        } else if (r && r.code === it.code) row.caught++;
        else { row.missed++; missed.push(`${tool} ${it.cls} [${it.how}] ${JSON.stringify(it.command).slice(0, 160)} -> ${r ? r.code : "passed"}`); }
        rows.set(it.cls, row);
      }
    }
    const lines = ["| class | inputs (×2 tools) | refused | missed | false refusals |", "|---|---:|---:|---:|---:|"];
    for (const [cls, r] of [...rows].sort()) lines.push(`| ${cls} | ${r.n} | ${r.caught} | ${r.missed} | ${r.fr} |`);
    const table = lines.join("\n");
    console.log(table);
    if (process.env.RGT_GUARD_TABLE) fs.writeFileSync(process.env.RGT_GUARD_TABLE, table + "\n");
    const byKind = new Map<string, string[]>();
    for (const m of missed) { const k = m.split(" [")[0]!.split(" ").slice(1).join(" ") + m.split("]")[0]!.split("[")[1]!.split(" ")[0]; byKind.set(k, [...(byKind.get(k) ?? []), m]); }
    console.log([...byKind.values()].flatMap((v) => v.slice(0, 2)).join("\n"));
    console.log(falses.slice(0, 60).join("\n"));
    expect(missed.length, `missed ${missed.length}`).toBe(0);
    expect(falses.length, `false refusals ${falses.length}`).toBe(0);
  });

  test("the guard runs before anything: same code whichever tool, the field named", () => {
    const a = guardInputs("remote_exec", { host: "x.invalid", command: "vastai destroy instance 1" }, ctx);
    const b = guardInputs("launch_queue", { host: "x.invalid", run_name: "r", workdir: "/root/proj", cells: [{ name: "c", command: "vastai destroy instance 1" }] }, ctx);
    expect(a?.code).toBe("DESTROY_UNAPPROVED");
    expect(b?.code).toBe("DESTROY_UNAPPROVED");
    expect(b?.reason).toContain("cells[0].command");
    // a tool nobody declared: its strings are still scanned, a `command` field still judged
    const c = guardInputs("future_tool", { host: "h", options: { command: "shutdown -h now" } }, ctx);
    expect(c?.code).toBe("DESTROY_UNAPPROVED");
    const d = guardInputs("future_tool", { note: `PGPASSWORD=hunter22 psql` }, ctx);
    expect(d?.code).toBe("SECRET_INLINE");
  });
});

describe("arguments that cannot do harm (#13.5)", () => {
  test.each(["/", "~", "~/", "$HOME", "/root", "/home/ubuntu", "/etc", "/usr", "/bin", "/var", "/boot", "/proc", "/sys", "/dev", "/lib", "/etc/ssh", "/usr/bin", "//"])("remote_dir %s refused", (d) => {
    const r = guardInputs("push_code", { host: "x.invalid", local_dir: "/tmp/proj", remote_dir: d }, ctx);
    expect(r?.code).toBe("BAD_INPUT");
    expect(r?.reason).toContain("remote_dir");
  });
  test.each(["~/proj", "/root/autodl-tmp/proj", "/workspace/code", "proj", "/tmp/x", "/usr/local/src/proj"])("remote_dir %s allowed", (d) => {
    expect(harmfulDir(d)).toBeNull();
    expect(guardInputs("push_code", { host: "x.invalid", local_dir: "/tmp/proj", remote_dir: d }, ctx)).toBeNull();
  });
  test("local_dir / or home itself refused", () => {
    expect(guardInputs("push_code", { host: "h", local_dir: "/", remote_dir: "~/p" }, ctx)?.code).toBe("BAD_INPUT");
    expect(guardInputs("push_code", { host: "h", local_dir: "~", remote_dir: "~/p" }, ctx)?.code).toBe("BAD_INPUT");
  });
  test.each(["a;b", "x$(id)", "run name`x`", "a|b", "a&b", "a>b", "a\nb", "../x", "-rf"])("names with shell characters refused, not rewritten: %s", (n) => {
    const r = guardInputs("launch_queue", { host: "h", run_name: "ok", workdir: "/root/p", cells: [{ name: n, command: "python x.py" }] }, ctx);
    expect(r?.code).toBe("BAD_INPUT");
    expect(r?.remedy).toContain("never rewritten");
    const q = guardInputs("launch_queue", { host: "h", run_name: n, workdir: "/root/p", cells: [{ name: "c", command: "python x.py" }] }, ctx);
    expect(q?.code).toBe("BAD_INPUT");
  });
  test("every echoed input is cut short", () => {
    const r = guardInputs("launch_queue", { host: "h", run_name: "x".repeat(100_000) + ";", workdir: "/root/p", cells: [{ name: "c", command: "true" }] }, ctx);
    expect(r?.code).toBe("BAD_INPUT");
    expect(JSON.stringify(r).length).toBeLessThan(1200);
  });
});
