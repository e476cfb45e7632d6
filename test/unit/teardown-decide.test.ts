/**
 * decide(facts): the Iron Law as one pure function, driven by fact tables. Each row is what the ledger,
 * the knowledge and the box said; the answer is a refusal (with its code), need_box, ask, or act.
 */
import { describe, expect, it } from "vitest";
import { decide, type ApprovalView, type TeardownFacts, type TeardownReceipt, type TeardownRun } from "../../src/guard/teardown.js";

const H = (c: string) => c.repeat(64);
const NOW = Date.parse("2026-09-01T00:00:00Z");

function rcpt(id: string, remote: string, files: string[], extra: Partial<TeardownReceipt> = {}): TeardownReceipt {
  return { receipt_id: id, host: "box", remote_path: remote, files: files.map((p) => ({ path: p, bytes: 1, sha256: H("a") })), manifest_sha256: H(id.slice(-1)), created_at: "2026-08-01T00:00:00Z", ...extra };
}
const fresh = (...rs: TeardownReceipt[]) => Object.fromEntries(rs.map((r) => [r.receipt_id, r.files.map((f) => ({ ...f }))]));
const run = (expect: string[]): TeardownRun => ({ run_id: "r1", hosts: ["box"], expect, cells: [{ name: "a", host: "box", output_dir: "/workspace/rgt-out/r1/a" }] });

function facts(over: Partial<TeardownFacts> = {}, box: Partial<NonNullable<TeardownFacts["box"]>> | null = {}): TeardownFacts {
  return {
    host: "box", now: NOW, platform: "vastai", kind: "ssh-rental", instance_id: "4242",
    meter: { verb: "destroy", irreversible: true, via: "provider_cli" },
    actions: [{ verb: "stop", irreversible: false }],
    adapter: { name: "vastai", describe: "vastai destroy instance 4242", missing: null },
    runs: [], receipts: [], stale: [],
    ...(box ? { box: { live: [], fresh: {}, hasOurState: false, checkpoints: null, home: "/root", ...box } } : {}),
    ...over,
  };
}

type Row = { name: string; f: TeardownFacts; want: string };
const withRoster = rcpt("rc1", "/workspace/out", ["best.pth"], { roster: ["best.pth"] });
const bare = rcpt("rc2", "/workspace/out", ["best.pth", "log.txt"]);
const approved = (binding: Partial<ApprovalView>): ApprovalView => ({ host: "box", instance_id: "4242", action: "destroy", evidence_hash: "", state: "approved", expires_at: NOW + 60_000, ...binding });

const rows: Row[] = [
  { name: "local workstation: nothing bills, teardown never applies", f: facts({ platform: "local", kind: "workstation", adapter: null }), want: "refuse:BAD_INPUT" },
  { name: "unknown action", f: facts({ asked: "nuke" }), want: "refuse:BAD_INPUT" },
  { name: "adapter lacks the instance id", f: facts({ adapter: { name: "vastai", describe: "", missing: { field: "registry.yaml hosts.box.instance_id", fix: "add it" } } }), want: "refuse:BAD_INPUT" },
  { name: "local facts pass, box not asked yet", f: facts({ receipts: [withRoster] }, null), want: "need_box" },
  { name: "a live run", f: facts({ runs: [run(["best.pth"])] }, { live: [{ run_id: "r1", cells_running: ["a"] }] }), want: "refuse:RUN_ACTIVE" },
  { name: "no run, no receipt", f: facts(), want: "refuse:UNVERIFIED_ARTIFACTS" },
  { name: "no run, a receipt with a pull-time roster", f: facts({ receipts: [withRoster] }, { fresh: fresh(withRoster) }), want: "ask" },
  { name: "no run, a directory pulled without a roster, no checkpoint found", f: facts({ receipts: [bare] }, { fresh: fresh(bare), checkpoints: [] }), want: "refuse:UNVERIFIED_ARTIFACTS" },
  { name: "no run, no roster, profile dirs not scanned", f: facts({ receipts: [bare] }, { fresh: fresh(bare), checkpoints: null }), want: "refuse:UNVERIFIED_ARTIFACTS" },
  { name: "no run, no roster, every checkpoint found is in the receipt", f: facts({ receipts: [bare] }, { fresh: fresh(bare), checkpoints: ["/workspace/out/best.pth"] }), want: "ask" },
  { name: "no run, no roster, a checkpoint found that no receipt holds", f: facts({ receipts: [bare] }, { fresh: fresh(bare), checkpoints: ["/workspace/out/best.pth", "/workspace/other/e9.pt"] }), want: "refuse:UNVERIFIED_ARTIFACTS" },
  { name: "no run, no receipt, checkpoints on the box, explicit action", f: facts({ asked: "destroy" }, { checkpoints: ["/workspace/x.pt"] }), want: "refuse:UNVERIFIED_ARTIFACTS" },
  { name: "nothing of ours, nothing found, explicit action → the human decides alone", f: facts({ asked: "destroy" }, { checkpoints: [] }), want: "ask" },
  { name: "a receipt rooted at ~ covers an absolute checkpoint", f: facts({ receipts: [rcpt("rc3", "~/out", ["m.safetensors"])] }, { fresh: fresh(rcpt("rc3", "~/out", ["m.safetensors"])), checkpoints: ["/root/out/m.safetensors"] }), want: "ask" },
  { name: "a run's expect covered", f: facts({ runs: [run(["best.pth"])], receipts: [rcpt("rc4", "/workspace/rgt-out/r1/a", ["best.pth"])] }, { fresh: fresh(rcpt("rc4", "/workspace/rgt-out/r1/a", ["best.pth"])) }), want: "ask" },
  { name: "a run without expect, its receipt pulled without a roster", f: facts({ runs: [run([])], receipts: [rcpt("rc5", "/workspace/rgt-out/r1/a", ["x.txt"], { run_id: "r1" })] }, { fresh: fresh(rcpt("rc5", "/workspace/rgt-out/r1/a", ["x.txt"], { run_id: "r1" })) }), want: "refuse:UNVERIFIED_ARTIFACTS" },
  { name: "drift on the box", f: facts({ receipts: [withRoster] }, { fresh: { rc1: [{ path: "best.pth", bytes: 1, sha256: H("f") }] } }), want: "refuse:UNVERIFIED_ARTIFACTS" },
  { name: "an approval bound to other evidence", f: facts({ receipts: [withRoster], approval: { id: "A", record: approved({ evidence_hash: H("0") }) } }, { fresh: fresh(withRoster) }), want: "refuse:APPROVAL_INVALID" },
  { name: "an unknown approval id", f: facts({ receipts: [withRoster], approval: { id: "A", record: undefined } }, { fresh: fresh(withRoster) }), want: "refuse:APPROVAL_INVALID" },
];

describe("decide() over fact tables", () => {
  for (const r of rows) {
    it(r.name, () => {
      const d = decide(r.f);
      expect(d.kind === "refuse" ? `refuse:${d.refusal.code}` : d.kind).toBe(r.want);
    });
  }

  it("the roster refusal names pull_verify with expect as the remedy", () => {
    const d = decide(facts({ receipts: [bare] }, { fresh: fresh(bare), checkpoints: [] }));
    expect(d.kind).toBe("refuse");
    if (d.kind === "refuse") {
      expect(d.refusal.reason).toMatch(/without a roster/);
      expect(d.refusal.remedy).toMatch(/pull_verify .*expect/);
    }
  });

  it("a matching approved approval → act, with the provider plan; the binding carries the evidence hash", () => {
    const ask = decide(facts({ receipts: [withRoster] }, { fresh: fresh(withRoster) }));
    expect(ask.kind).toBe("ask");
    if (ask.kind !== "ask") return;
    const act = decide(facts({ receipts: [withRoster], approval: { id: "A", record: approved({ evidence_hash: ask.binding.evidence_hash }) } }, { fresh: fresh(withRoster) }));
    const pending = decide(facts({ receipts: [withRoster], approval: { id: "A", record: approved({ evidence_hash: ask.binding.evidence_hash, state: "pending" }) } }, { fresh: fresh(withRoster) }));
    expect(pending.kind === "refuse" && pending.refusal.code).toBe("APPROVAL_REQUIRED");
    expect(act.kind).toBe("act");
    if (act.kind === "act") {
      expect(act.plan).toEqual({ via: "provider", adapter: "vastai", describe: "vastai destroy instance 4242" });
      expect(act.evidence.receipt_ids).toEqual(["rc1"]);
    }
  });

  it("another listed action is manual only, with a MANUAL_ACTION warning; stale billing facts warn, never block", () => {
    const d = decide(facts({ asked: "stop", receipts: [withRoster], stale: [{ platform: "vastai", section: "5. Teardown / billing", fact: "x", verified: "2025-01", age_months: 20 }] }, { fresh: fresh(withRoster) }));
    expect(d.kind).toBe("ask");
    if (d.kind === "ask") {
      expect(d.plan.via).toBe("manual");
      expect(d.irreversible).toBe(false);
      expect(d.warnings.map((w) => w.code).sort()).toEqual(["MANUAL_ACTION", "STALE_FACT"]);
    }
  });

  it("is pure: the same facts give the same answer", () => {
    const f = facts({ receipts: [withRoster] }, { fresh: fresh(withRoster) });
    expect(JSON.stringify(decide(f))).toBe(JSON.stringify(decide(f)));
  });
});
