import { describe, expect, it } from "vitest";
import {
  checkApproval, checkEvidence, checkLiveRuns, elicitationApproves, elicitationSchema, evidenceHash, receiptCovers, receiptDrift,
  staleFactWarnings, type ApprovalView, type FreshHashes, type TeardownReceipt, type TeardownRun,
} from "../../src/guard/teardown.js";

const H = (c: string) => c.repeat(64);

function run(id: string, cells: string[], expect: string[], host = "box"): TeardownRun {
  return { run_id: id, hosts: [host], expect, cells: cells.map((n) => ({ name: n, host, output_dir: `/data/rgt-out/${id}/${n}` })) };
}

function rcpt(id: string, files: [string, string][], extra: Partial<TeardownReceipt> = {}): TeardownReceipt {
  return {
    receipt_id: id, host: "box", remote_path: "/data/rgt-out/r1", run_id: "r1",
    files: files.map(([p, h]) => ({ path: p, bytes: 10, sha256: h })), manifest_sha256: H(id.slice(-1) === "2" ? "b" : "a"),
    created_at: "2026-01-01T00:00:00Z", ...extra,
  };
}

const same = (r: TeardownReceipt): FreshHashes => ({ [r.receipt_id]: r.files.map((f) => ({ ...f })) });

describe("live runs", () => {
  it("refuses RUN_ACTIVE naming the running cells", () => {
    const r = checkLiveRuns("box", [{ run_id: "r1", cells_running: ["a", "b"] }, { run_id: "r2", cells_running: [] }]);
    expect(r?.code).toBe("RUN_ACTIVE");
    expect(r?.reason).toContain("r1 (a, b)");
    expect(r?.reason).not.toContain("r2");
  });
  it("passes when nothing is running", () => {
    expect(checkLiveRuns("box", [{ run_id: "r1", cells_running: [] }])).toBeNull();
    expect(checkLiveRuns("box", [])).toBeNull();
  });
});

describe("evidence", () => {
  const base = { host: "box", explicitAction: false, boxHasNothingOfOurs: false };

  it("no runs, no receipts → UNVERIFIED_ARTIFACTS", () => {
    const d = checkEvidence({ ...base, runs: [], receipts: [], fresh: {} });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.refusal.code).toBe("UNVERIFIED_ARTIFACTS");
  });

  it("no runs, no receipts, explicit action but the box holds our state → still refused", () => {
    const d = checkEvidence({ ...base, explicitAction: true, boxHasNothingOfOurs: false, runs: [], receipts: [], fresh: {} });
    expect(d.ok).toBe(false);
  });

  it("no runs, no receipts, nothing of ours on the box, explicit action → goes to the human with NO_EVIDENCE", () => {
    const d = checkEvidence({ ...base, explicitAction: true, boxHasNothingOfOurs: true, runs: [], receipts: [], fresh: {} });
    expect(d.ok).toBe(true);
    if (d.ok) {
      expect(d.receipt_ids).toEqual([]);
      expect(d.warnings.map((w) => w.code)).toEqual(["NO_EVIDENCE"]);
    }
  });

  it("nothing of ours but no explicit action → refused, remedy mentions passing action", () => {
    const d = checkEvidence({ ...base, boxHasNothingOfOurs: true, runs: [], receipts: [], fresh: {} });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.refusal.remedy).toContain("action");
  });

  it("a run whose roster is fully covered and unchanged passes, listing the receipt", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")], ["b/best.pth", H("2")]]);
    const d = checkEvidence({ ...base, runs: [run("r1", ["a", "b"], ["best.pth"])], receipts: [r], fresh: same(r) });
    expect(d.ok).toBe(true);
    if (d.ok) {
      expect(d.receipt_ids).toEqual(["rc1"]);
      expect(d.covered).toEqual([{ run_id: "r1", artifacts: 2 }]);
    }
  });

  it("a roster gap → UNVERIFIED_ARTIFACTS naming the missing cell/file", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")]]);
    const d = checkEvidence({ ...base, runs: [run("r1", ["a", "b"], ["best.pth"])], receipts: [r], fresh: same(r) });
    expect(d.ok).toBe(false);
    if (!d.ok) {
      expect(d.refusal.code).toBe("UNVERIFIED_ARTIFACTS");
      expect(d.refusal.reason).toContain("b/best.pth");
      expect(d.refusal.remedy).toContain('run_id: "r1"');
    }
  });

  it("a run with no receipt at all → refused even when other runs are covered", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")]]);
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"]), run("r2", ["x"], ["m.pt"])], receipts: [r], fresh: same(r) });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.refusal.reason).toContain("r2");
  });

  it("a file changed on the box after the pull → UNVERIFIED_ARTIFACTS (stale receipt)", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")]]);
    const fresh: FreshHashes = { rc1: [{ path: "a/best.pth", bytes: 11, sha256: H("9") }] };
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [r], fresh });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.refusal.reason).toMatch(/changed on the box/);
  });

  it("a file gone from the box fails closed", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")]]);
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [r], fresh: { rc1: [] } });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.refusal.reason).toMatch(/no longer on the box/);
  });

  it("a re-hash error fails closed", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")]]);
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [r], fresh: { rc1: { error: "boom" } } });
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.refusal.reason).toContain("boom");
  });

  it("an unrelated receipt that drifted also blocks (every receipt on the host must hold)", () => {
    const good = rcpt("rc1", [["a/best.pth", H("1")]]);
    const other = rcpt("rc2", [["notes.txt", H("3")]], { run_id: undefined, remote_path: "/data/misc" });
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [good, other], fresh: { ...same(good), rc2: [{ path: "notes.txt", bytes: 1, sha256: H("4") }] } });
    expect(d.ok).toBe(false);
  });

  it("a newer pull of the same source supersedes a drifted older receipt", () => {
    const old = rcpt("rc1", [["a/best.pth", H("1")]], { created_at: "2026-01-01T00:00:00Z" });
    const nu = rcpt("rc2", [["a/best.pth", H("9")]], { created_at: "2026-01-02T00:00:00Z" });
    const fresh: FreshHashes = { rc1: [{ path: "a/best.pth", bytes: 10, sha256: H("9") }], rc2: [{ path: "a/best.pth", bytes: 10, sha256: H("9") }] };
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [old, nu], fresh });
    expect(d.ok).toBe(true);
    if (d.ok) expect(d.receipt_ids).toEqual(["rc2"]);
  });

  it("receipts for other hosts are ignored", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")]], { host: "other" });
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [r], fresh: same(r) });
    expect(d.ok).toBe(false);
  });

  it("a remote_path receipt covers by absolute path (no run_id on it)", () => {
    const r = rcpt("rc1", [["best.pth", H("1")]], { run_id: undefined, remote_path: "/data/rgt-out/r1/a/" });
    const d = checkEvidence({ ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [r], fresh: same(r) });
    expect(d.ok).toBe(true);
  });

  it("a durable-copy receipt covers through artifactRoots", () => {
    const r = rcpt("rc1", [["best.pth", H("1")]], { run_id: undefined, remote_path: "/durable/rgt/r1/a" });
    const d = checkEvidence({
      ...base, runs: [run("r1", ["a"], ["best.pth"])], receipts: [r], fresh: same(r),
      artifactRoots: (rn, c) => [`/durable/rgt/${rn.run_id}/${c}`],
    });
    expect(d.ok).toBe(true);
  });

  it("a run with no roster needs a receipt tied to it that was pulled against a roster (issue 12.6)", () => {
    const none = checkEvidence({ ...base, runs: [run("r1", ["a"], [])], receipts: [], fresh: {} });
    expect(none.ok).toBe(false);
    const bare = rcpt("rc1", [["a/log.txt", H("1")]]);
    const refused = checkEvidence({ ...base, runs: [run("r1", ["a"], [])], receipts: [bare], fresh: same(bare) });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.refusal.remedy).toContain("expect");
    const r = rcpt("rc1", [["a/log.txt", H("1")]], { roster: ["a/log.txt"] });
    const ok = checkEvidence({ ...base, runs: [run("r1", ["a"], [])], receipts: [r], fresh: same(r) });
    expect(ok.ok).toBe(true);
  });

  it("cells on another host do not need coverage from this host", () => {
    const rr: TeardownRun = { run_id: "r1", hosts: ["box", "b2"], expect: ["best.pth"], cells: [
      { name: "a", host: "box", output_dir: "/data/rgt-out/r1/a" }, { name: "b", host: "b2", output_dir: "/data/rgt-out/r1/b" }] };
    const r = rcpt("rc1", [["a/best.pth", H("1")]]);
    const d = checkEvidence({ ...base, runs: [rr], receipts: [r], fresh: same(r) });
    expect(d.ok).toBe(true);
  });

  it("evidence hash is order-independent and changes with any manifest", () => {
    const a = { receipt_id: "x", manifest_sha256: H("1") }, b = { receipt_id: "y", manifest_sha256: H("2") };
    expect(evidenceHash("box", [a, b])).toBe(evidenceHash("box", [b, a]));
    expect(evidenceHash("box", [a, b])).not.toBe(evidenceHash("box", [a, { ...b, manifest_sha256: H("3") }]));
    expect(evidenceHash("box", [a])).not.toBe(evidenceHash("box2", [a]));
  });

  it("receiptCovers does not match a same-named file of another cell", () => {
    const r = rcpt("rc1", [["b/best.pth", H("1")]]);
    const rr = run("r1", ["a", "b"], ["best.pth"]);
    expect(receiptCovers(r, rr, rr.cells[0], "best.pth")).toBe(false);
    expect(receiptCovers(r, rr, rr.cells[1], "best.pth")).toBe(true);
  });

  it("receiptDrift reports null when every hash holds", () => {
    const r = rcpt("rc1", [["a/best.pth", H("1")]]);
    expect(receiptDrift(r, same(r))).toBeNull();
    expect(receiptDrift(r, {})).toMatch(/not asked/);
  });
});

describe("stale facts", () => {
  it("becomes one warning naming the facts, never a block", () => {
    const w = staleFactWarnings([{ platform: "vastai", section: "5. Teardown / billing", fact: "destroy deletes the disk", verified: "2024-01", age_months: 26 }]);
    expect(w).toHaveLength(1);
    expect(w[0].code).toBe("STALE_FACT");
    expect(w[0].message).toContain("2024-01");
    expect(staleFactWarnings([])).toEqual([]);
  });
});

describe("approvals", () => {
  const want = { host: "box", instance_id: "42", action: "destroy", evidence_hash: H("e") };
  const rec = (over: Partial<ApprovalView> = {}): ApprovalView => ({ ...want, state: "approved", expires_at: 2_000, ...over });

  it("unknown id → APPROVAL_INVALID", () => {
    const d = checkApproval(undefined, want, 1_000, "apv_x");
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.refusal.code).toBe("APPROVAL_INVALID");
  });
  it("used → APPROVAL_INVALID", () => {
    const d = checkApproval(rec({ state: "used" }), want, 1_000, "apv_x");
    expect(!d.ok && d.refusal.code).toBe("APPROVAL_INVALID");
    expect(!d.ok && d.refusal.reason).toMatch(/single-use/);
  });
  it("expired → APPROVAL_INVALID", () => {
    const d = checkApproval(rec(), want, 2_000, "apv_x");
    expect(!d.ok && d.refusal.reason).toMatch(/expired/);
  });
  it.each([
    ["host", { host: "other" }],
    ["instance", { instance_id: "43" }],
    ["action", { action: "stop" }],
    ["receipts", { evidence_hash: H("f") }],
  ])("bound to another %s → APPROVAL_INVALID", (what, over) => {
    const d = checkApproval(rec(over as Partial<ApprovalView>), want, 1_000, "apv_x");
    expect(!d.ok && d.refusal.code).toBe("APPROVAL_INVALID");
    expect(!d.ok && d.refusal.reason).toContain(what);
  });
  it("pending → APPROVAL_REQUIRED carrying the same id", () => {
    const d = checkApproval(rec({ state: "pending" }), want, 1_000, "apv_abc");
    expect(!d.ok && d.refusal.code).toBe("APPROVAL_REQUIRED");
    expect(!d.ok && d.refusal.extra?.approval_id).toBe("apv_abc");
  });
  it("denied → APPROVAL_DENIED", () => {
    const d = checkApproval(rec({ state: "denied" }), want, 1_000, "apv_x");
    expect(!d.ok && d.refusal.code).toBe("APPROVAL_DENIED");
  });
  it("approved, matching, unexpired → ok", () => {
    expect(checkApproval(rec(), want, 1_999, "apv_x")).toEqual({ ok: true });
  });
});

describe("elicitation", () => {
  it("schema has one string field and no required list", () => {
    const s = elicitationSchema("box") as { properties: Record<string, { type: string }>; required?: unknown };
    expect(Object.values(s.properties).map((p) => p.type)).toEqual(["string"]);
    expect(s.required).toBeUndefined();
  });
  it("only the exact host name approves", () => {
    expect(elicitationApproves("box", { action: "accept", content: { confirm_host: "box" } })).toBe("approved");
    expect(elicitationApproves("box", { action: "accept", content: { confirm_host: " box " } })).toBe("approved");
    expect(elicitationApproves("box", { action: "accept", content: { confirm_host: "yes" } })).toBe("denied");
    expect(elicitationApproves("box", { action: "accept", content: { confirm_host: true } })).toBe("denied");
    expect(elicitationApproves("box", { action: "accept" })).toBe("denied");
    expect(elicitationApproves("box", { action: "decline" })).toBe("denied");
    expect(elicitationApproves("box", { action: "cancel" })).toBe("no_answer");
    expect(elicitationApproves("box", undefined)).toBe("no_answer");
  });
});
