import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Ledger } from "../../src/ledger/store.js";
import { approvalKey, consumeApproval, decideApproval, findApproval, issueApproval, listApprovals, looksLikeApprovalId } from "../../src/ledger/approvals.js";
import { loadRegistry } from "../../src/ledger/registry.js";
import { idleWarnings, meterView, readMeters, recordTeardown, touchHost } from "../../src/ledger/meter.js";

let dir: string;
let ledger: Ledger;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-td-"));
  ledger = new Ledger(dir);
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const binding = { host: "box", instance_id: "7", action: "destroy", evidence_hash: "e".repeat(64) };
const summary = { platform: "vastai", verb: "destroy", irreversible: true, via: "vastai destroy instance 7", receipt_ids: ["r"], warnings: [] };

describe("approval store", () => {
  it("ids are 128-bit random, stored only as HMAC", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) ids.add((await issueApproval(ledger, binding, summary)).id);
    expect(ids.size).toBe(20);
    for (const id of ids) {
      expect(looksLikeApprovalId(id)).toBe(true);
      expect(Buffer.from(id.slice(4), "base64url").length).toBe(16);
    }
    const text = fs.readFileSync(path.join(dir, "approvals.json"), "utf8");
    for (const id of ids) expect(text).not.toContain(id.slice(4));
    expect(fs.statSync(path.join(dir, "approval.key")).mode & 0o777).toBe(0o600);
  });

  it("a forged id of the right shape finds nothing; the HMAC key is per state dir", async () => {
    const { id } = await issueApproval(ledger, binding, summary);
    expect(findApproval(ledger, id)?.host).toBe("box");
    const forged = "apv_" + Buffer.alloc(16, 7).toString("base64url");
    expect(findApproval(ledger, forged)).toBeUndefined();
    expect(findApproval(ledger, "not-an-id")).toBeUndefined();
    const other = new Ledger(fs.mkdtempSync(path.join(os.tmpdir(), "rgt-td2-")));
    expect(approvalKey(other, id)).not.toBe(approvalKey(ledger, id));
    expect(findApproval(other, id)).toBeUndefined();
    fs.rmSync(other.dir, { recursive: true, force: true });
  });

  it("pending → approved → used, exactly once", async () => {
    const { id } = await issueApproval(ledger, binding, summary);
    expect(await consumeApproval(ledger, id)).toBe(false); // not approved yet
    await decideApproval(ledger, id, "approved", "cli");
    const results = await Promise.all([consumeApproval(ledger, id), consumeApproval(ledger, id), consumeApproval(ledger, id)]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(findApproval(ledger, id)?.state).toBe("used");
    await expect(decideApproval(ledger, id, "approved", "cli")).rejects.toThrow(/already used/);
  });

  it("expiry follows RGT_APPROVAL_TTL_S and blocks decide and consume", async () => {
    process.env.RGT_APPROVAL_TTL_S = "2";
    try {
      const t0 = 1_000_000;
      const { id, record } = await issueApproval(ledger, binding, summary, t0);
      expect(record.expires_at - t0).toBe(2000);
      await expect(decideApproval(ledger, id, "approved", "cli", t0 + 2500)).rejects.toThrow(/expired/);
      await decideApproval(ledger, id, "approved", "cli", t0 + 1000);
      expect(await consumeApproval(ledger, id, t0 + 2001)).toBe(false);
    } finally {
      delete process.env.RGT_APPROVAL_TTL_S;
    }
  });

  it("denied stays denied", async () => {
    const { id } = await issueApproval(ledger, binding, summary);
    await decideApproval(ledger, id, "denied", "elicitation");
    expect(listApprovals(ledger)[0].state).toBe("denied");
    await expect(decideApproval(ledger, id, "approved", "cli")).rejects.toThrow();
  });
});

describe("registry", () => {
  it("reads hosts with or without the hosts: wrapper", () => {
    fs.writeFileSync(path.join(dir, "registry.yaml"), "hosts:\n  a:\n    price_per_hour: 0.5\n    instance_id: 123\n    profile: vastai\n");
    expect(loadRegistry(ledger).a).toMatchObject({ price_per_hour: 0.5, instance_id: "123", profile: "vastai", currency: "USD" });
    fs.rmSync(path.join(dir, "registry.yaml"));
    fs.writeFileSync(path.join(dir, "hosts.yaml"), "b:\n  price_per_hour: 1\n");
    expect(loadRegistry(ledger).b?.price_per_hour).toBe(1);
  });
  it("a bad field is a BAD_INPUT naming file and field", () => {
    fs.writeFileSync(path.join(dir, "registry.yaml"), "hosts:\n  a:\n    price_per_hour: cheap\n");
    try {
      loadRegistry(ledger);
      expect.unreachable();
    } catch (e) {
      const r = (e as { refusal: { code: string; reason: string } }).refusal;
      expect(r.code).toBe("BAD_INPUT");
      expect(r.reason).toContain("registry.yaml");
      expect(r.reason).toContain("hosts.a.price_per_hour");
    }
  });
});

describe("meter", () => {
  it("cost so far = price × hours since first seen; idle past the threshold warns once per clock", async () => {
    const t0 = Date.UTC(2026, 0, 1);
    await touchHost(ledger, "box", { now: t0 });
    const m = readMeters(ledger).box;
    const v = meterView("box", m, { price_per_hour: 0.6 }, t0 + 2.5 * 3_600_000, 1_800_000);
    expect(v.cost_so_far).toBe(1.5);
    expect(v.idle).toBe(true);
    const clocks = [{ id: "AD_RELEASE", message: "stopped boxes are released after 15 days", hours: 360 }];
    const first = idleWarnings(v, clocks, []);
    expect(first.warnings.map((w) => w.code)).toEqual(["IDLE_METER", "AD_RELEASE"]);
    expect(first.warnings[0].message).toContain("1.50 USD");
    const again = idleWarnings(v, clocks, first.shownNow);
    expect(again.warnings.map((w) => w.code)).toEqual(["IDLE_METER"]);
  });

  it("activity resets idleness; no price → cost unknown with the fix named", async () => {
    const t0 = Date.UTC(2026, 0, 1);
    await touchHost(ledger, "box", { now: t0 });
    await touchHost(ledger, "box", { now: t0 + 3_600_000, activity: true });
    const v = meterView("box", readMeters(ledger).box, undefined, t0 + 3_700_000, 1_800_000);
    expect(v.idle).toBe(false);
    expect(v.cost_text).toMatch(/registry\.yaml/);
    expect(idleWarnings(v, [], []).warnings).toEqual([]);
  });

  it("a finished teardown stops the clock and the idle warning", async () => {
    const t0 = Date.UTC(2026, 0, 1);
    await touchHost(ledger, "box", { now: t0 });
    await recordTeardown(ledger, "box", { action: "destroy", status: "done", outcome: "ok", now: t0 + 3_600_000 });
    const v = meterView("box", readMeters(ledger).box, { price_per_hour: 2 }, t0 + 10 * 3_600_000, 0);
    expect(v.stopped).toBe(true);
    expect(v.idle).toBe(false);
    expect(v.cost_so_far).toBe(2);
  });
});
