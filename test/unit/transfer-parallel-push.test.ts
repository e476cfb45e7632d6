/** The box-side range record of a parallel push: the pull's format, told apart by the local file's version. */
import { describe, expect, it } from "vitest";
import { parseSidecar, rangeLine, sidecarHead } from "../../src/transfer/parallel/sidecar.js";

describe("a push's range record", () => {
  const id = { size: 10 * 2 ** 20, source: "2049:1234:1764600000.123456789" };
  const text = sidecarHead(id) + rangeLine({ start: 0, end: 2 ** 20 }) + rangeLine({ start: 3 * 2 ** 20, end: 4 * 2 ** 20 }) + "5242880 62";
  it("round-trips its ranges for the same local version; a torn last line counts only what it says", () => {
    expect(parseSidecar(text, id)).toEqual([{ start: 0, end: 2 ** 20 }, { start: 3 * 2 ** 20, end: 4 * 2 ** 20 }]);
  });
  it("is discarded for another local version (edited, replaced) or another size", () => {
    expect(parseSidecar(text, { ...id, source: "2049:1234:1764600001.000000000" })).toEqual([]);
    expect(parseSidecar(text, { ...id, size: id.size + 1 })).toEqual([]);
    // a pull's record (sha256 named) is not a push's
    expect(parseSidecar(text, { size: id.size, sha256: "ab".repeat(32) })).toEqual([]);
  });
  it("a pull's record without a source still reads as before", () => {
    const pull = { size: 4096, sha256: "cd".repeat(32) };
    expect(parseSidecar(`${JSON.stringify(pull)}\n0 4096\n`, pull)).toEqual([{ start: 0, end: 4096 }]);
  });
});
