import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { chooseStreams, coveredBytes, mergeRanges, missingRanges, planPieces, splitBySize } from "../../src/transfer/parallel/plan.js";
import { createSidecar, loadSidecar, recordRange } from "../../src/transfer/parallel/sidecar.js";
import { splitForRanges } from "../../src/transfer/parallel/index.js";

const MiB = 2 ** 20;
const W = 2 * MiB;

describe("range planner", () => {
  it("merges overlapping and touching ranges, finds the gaps", () => {
    const ranges = [{ start: 10, end: 20 }, { start: 0, end: 5 }, { start: 5, end: 8 }, { start: 15, end: 30 }, { start: 40, end: 40 }];
    expect(mergeRanges(ranges)).toEqual([{ start: 0, end: 8 }, { start: 10, end: 30 }]);
    expect(missingRanges(50, [{ start: 10, end: 20 }, { start: 0, end: 5 }, { start: 45, end: 90 }])).toEqual([{ start: 5, end: 10 }, { start: 20, end: 45 }]);
    expect(missingRanges(0, [])).toEqual([]);
    expect(coveredBytes([{ start: 0, end: 10 }, { start: 5, end: 15 }])).toBe(15);
  });

  it("cuts only the missing bytes into pieces, in file and offset order, covering each exactly once", () => {
    const files = [{ path: "a", bytes: 10 * MiB + 7 }, { path: "b", bytes: 3 }, { path: "c", bytes: 0 }];
    const done = [[{ start: 2 * MiB, end: 5 * MiB }], [], []];
    const pieces = planPieces(files, 2 * MiB, done);
    expect(pieces.every((p) => p.end - p.start <= 2 * MiB && p.end > p.start)).toBe(true);
    expect(pieces.filter((p) => p.file === 0).map((p) => [p.start, p.end]))
      .toEqual([[0, 2 * MiB], [5 * MiB, 7 * MiB], [7 * MiB, 9 * MiB], [9 * MiB, 10 * MiB + 7]]);
    expect(pieces.filter((p) => p.file === 1)).toEqual([{ file: 1, start: 0, end: 3 }]);
    expect(pieces.some((p) => p.file === 2)).toBe(false);
    // pieces + done cover file a exactly
    const a = [...pieces.filter((p) => p.file === 0), ...done[0]];
    expect(coveredBytes(a)).toBe(files[0].bytes);
    expect(missingRanges(files[0].bytes, a)).toEqual([]);
    expect(() => planPieces(files, 0)).toThrow();
  });

  it("splits a file list over n streams by size, every file once", () => {
    const sizes = [100, 90, 80, 10, 10, 5, 5, 1];
    const lanes = splitBySize(sizes.map((bytes, i) => ({ path: `f${i}`, bytes })), 3);
    expect(lanes).toHaveLength(3);
    expect(lanes.flat().sort((a, b) => a - b)).toEqual(sizes.map((_, i) => i));
    const loads = lanes.map((l) => l.reduce((a, i) => a + sizes[i], 0));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(15);
    expect(splitBySize([{ path: "x", bytes: 1 }], 4).filter((l) => l.length)).toHaveLength(1);
  });

  it("ranges only big files, and only when there is enough of them", () => {
    const big = { path: "ckpt.pt", bytes: 200 * MiB, sha256: "x" };
    const small = { path: "log.txt", bytes: 4000, sha256: "y" };
    expect(splitForRanges([big, small])).toEqual({ ranged: [big], rest: [small] });
    expect(splitForRanges([{ ...big, bytes: 10 * MiB }, small]).ranged).toEqual([]);
  });
});

describe("stream chooser", () => {
  const base = { windowBytes: W, remainingBytes: 1024 * MiB, targetBps: 125e6 };
  it("stays at one stream on loopback and short links, where one window covers the bandwidth-delay product", () => {
    expect(chooseStreams({ ...base, rttMs: 0.2 }).streams).toBe(1);
    expect(chooseStreams({ ...base, rttMs: 10 }).streams).toBe(1);
  });
  it("grows with the round trip to the bandwidth-delay bound, capped at 8", () => {
    expect(chooseStreams({ ...base, rttMs: 40 }).streams).toBe(3);
    expect(chooseStreams({ ...base, rttMs: 100 }).streams).toBe(6);
    expect(chooseStreams({ ...base, rttMs: 300 }).streams).toBe(8);
    expect(chooseStreams({ ...base, rttMs: 300, cap: 4 }).streams).toBe(4);
  });
  it("stays at one when the first stream was not window-limited", () => {
    // window bound at 100 ms is 20 MiB/s; a stream doing 2 MiB/s is held back by something else
    const c = chooseStreams({ ...base, rttMs: 100, firstStreamBps: 2 * MiB });
    expect(c.streams).toBe(1);
    expect(c.reason).toMatch(/not window-limited/);
    expect(chooseStreams({ ...base, rttMs: 100, firstStreamBps: 18 * MiB }).streams).toBe(6);
  });
  it("never above MaxSessions or the pool when streams share a connection, nor more than the bytes justify", () => {
    expect(chooseStreams({ ...base, rttMs: 300, maxSessions: 4 }).streams).toBe(2);
    expect(chooseStreams({ ...base, rttMs: 300, poolChannels: 4 }).streams).toBe(3);
    expect(chooseStreams({ ...base, rttMs: 300, remainingBytes: 40 * MiB }).streams).toBe(2);
    expect(chooseStreams({ ...base, rttMs: 300, remainingBytes: 1 }).streams).toBe(1);
  });
});

describe("range record (sidecar)", () => {
  it("keeps the ranges of the same file version, drops another version's and torn lines", () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-sidecar-"));
    const f = path.join(d, "x.prange.ranges");
    const id = { size: 100, sha256: "ab" };
    expect(loadSidecar(f, id)).toEqual([]);
    createSidecar(f, id);
    recordRange(f, { start: 0, end: 10 });
    recordRange(f, { start: 50, end: 100 });
    fs.appendFileSync(f, "60 7"); // cut mid-append
    expect(loadSidecar(f, id)).toEqual([{ start: 0, end: 10 }, { start: 50, end: 100 }]);
    expect(loadSidecar(f, { size: 100, sha256: "cd" })).toEqual([]);
    expect(loadSidecar(f, { size: 99, sha256: "ab" })).toEqual([]);
    fs.rmSync(d, { recursive: true, force: true });
  });
});
