/**
 * Time bounds on a frozen box: the box's sshd (listener and per-connection processes) SIGSTOPped, so TCP
 * still connects and nothing answers. Both before a connection exists (the handshake hangs) and with a
 * pooled connection already open (the channel open hangs): `remote_exec` with timeout_s 5 answers within
 * 10 s with TIMEOUT naming the stage, `run_status` says `unknown` within its bound, calls do not queue behind
 * the dead connection, and after the thaw the next call works.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Lab } from "../../src/lab/box.js";
import { connectServer } from "../../src/lab/client.js";
import { RefusalError } from "../../src/common/result.js";
import { SshRemote } from "../../src/remote/pool.js";

type R = Record<string, any>;
let lab: Lab;
/** measured answer times, printed once at the end (numbers for the record, not assertions beyond the bounds) */
const measured: string[] = [];

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const t0 = Date.now();
  try { const value = await p; return { ms: Date.now() - t0, value }; } catch (error) { return { ms: Date.now() - t0, error }; }
}

beforeAll(async () => {
  lab = await startLab([{ name: "fz1", gpus: 1 }, { name: "fz2", gpus: 0 }]);
});
afterEach(() => { for (const b of Object.values(lab.boxes)) b.thawSshd(); });
afterAll(async () => {
  if (measured.length) console.info(`frozen-box answer times: ${measured.join(", ")}`);
  await lab?.stop();
});

describe("a box whose sshd is frozen before we connect (the handshake hangs)", () => {
  it("exec with a 5 s bound is TIMEOUT naming the banner stage within 10 s; after the thaw the next call works", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    try {
      expect(lab.boxes.fz2.freezeSshd().length).toBeGreaterThan(0);
      const a = await timed(r.exec("fz2", "echo hi", { timeoutMs: 5000 }));
      expect(a.error).toBeInstanceOf(RefusalError);
      const ref = (a.error as RefusalError).refusal as R;
      expect(ref.code).toBe("TIMEOUT");
      expect(ref.reason).toMatch(/SSH banner/);
      expect(ref.diagnosis).toMatch(/accepts TCP but sends no SSH banner/);
      expect(a.ms).toBeLessThan(10_000);
      measured.push(`handshake-hang exec(5 s) ${a.ms} ms`);
      // a second call is not queued behind the first: it gets its own bound (joining or redialling)
      const b = await timed(r.exec("fz2", "echo hi", { timeoutMs: 3000 }));
      expect(((b.error as RefusalError).refusal as R).code).toBe("TIMEOUT");
      expect(b.ms).toBeLessThan(8000);
      measured.push(`second exec(3 s) ${b.ms} ms`);

      lab.boxes.fz2.thawSshd();
      const c = await r.exec("fz2", "echo back", { timeoutMs: 15_000 });
      expect(c.stdout.trim()).toBe("back");
    } finally { await r.close(); }
  });
});

describe("a box whose sshd freezes under an open pooled connection (the channel open hangs)", () => {
  it("remote_exec timeout_s 5 → TIMEOUT within 10 s, run_status → unknown within its bound, no queue, thaw → works", async () => {
    const srv = await connectServer(lab.env);
    try {
      const box = lab.boxes.fz1;
      const l = (await srv.call("launch_queue", { host: "fz1", workdir: "/root", run_name: "frozen-1", cells: [{ name: "c", command: "sleep 600" }] })) as R;
      expect(l.ok, JSON.stringify(l)).toBe(true);
      const s0 = (await srv.call("run_status", { run_id: l.run_id })) as R;
      expect(s0.state, JSON.stringify(s0)).toBe("running");
      const warm = (await srv.call("remote_exec", { host: "fz1", command: "echo warm" })) as R;
      expect(warm.stdout_tail.trim()).toBe("warm");

      box.freezeSshd();
      const x = await timed(srv.call("remote_exec", { host: "fz1", command: "echo hi", timeout_s: 5 }) as Promise<R>);
      const xr = x.value as R;
      expect(xr.ok).toBe(false);
      expect(xr.refused.code, JSON.stringify(xr)).toBe("TIMEOUT");
      expect(xr.refused.reason).toMatch(/channel open/);
      expect(x.ms).toBeLessThan(10_000);
      measured.push(`channel-hang remote_exec(timeout_s 5) ${x.ms} ms`);

      const st = await timed(srv.call("run_status", { run_id: l.run_id }) as Promise<R>);
      const sr = st.value as R;
      expect(sr.state, JSON.stringify(sr)).toBe("unknown");
      expect(sr.cells[0].state).toBe("unknown");
      expect(st.ms).toBeLessThan(30_000);
      measured.push(`run_status → unknown ${st.ms} ms`);

      // many calls at once on the frozen box: each answers inside its own bound, none waits behind another
      const many = await Promise.all(Array.from({ length: 10 }, () => timed(srv.call("remote_exec", { host: "fz1", command: "true", timeout_s: 4 }) as Promise<R>)));
      for (const m of many) {
        expect((m.value as R).refused?.code, JSON.stringify(m.value)).toBe("TIMEOUT");
        expect(m.ms).toBeLessThan(9000);
      }
      measured.push(`10 parallel remote_exec(timeout_s 4) slowest ${Math.max(...many.map((m) => m.ms))} ms`);

      box.thawSshd();
      const after = (await srv.call("remote_exec", { host: "fz1", command: "echo thawed", timeout_s: 20 })) as R;
      expect(after.ok, JSON.stringify(after)).toBe(true);
      expect(after.stdout_tail.trim()).toBe("thawed");
      const s1 = (await srv.call("run_status", { run_id: l.run_id })) as R;
      expect(s1.state, JSON.stringify(s1)).toBe("running");
      await srv.call("stop_run", { run_id: l.run_id });
    } finally { await srv.close(); }
  });

  it("a command running when the box freezes is answered shortly after its bound, marked unconfirmed, and the connection dropped", async () => {
    const r = new SshRemote({ sshConfig: lab.sshConfig });
    const box = lab.boxes.fz2;
    try {
      await r.exec("fz2", "true");
      const p = timed(r.exec("fz2", "sleep 30", { timeoutMs: 4000 }));
      await new Promise((res) => setTimeout(res, 1000));
      box.freezeSshd();
      const a = await p;
      expect(a.ms).toBeLessThan(10_000);
      expect(a.value?.timedOut).toBe(true);
      expect(a.value?.unresponsive).toBe(true);
      expect(a.value?.stderr).toMatch(/unconfirmed/);
      measured.push(`frozen mid-command exec(4 s) ${a.ms} ms`);
      box.thawSshd();
      expect((await r.exec("fz2", "echo again", { timeoutMs: 15_000 })).stdout.trim()).toBe("again");
    } finally { await r.close(); }
  });
});
