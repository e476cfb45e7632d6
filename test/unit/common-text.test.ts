import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { shq, versionAtLeast } from "../../src/common/text.js";

describe("shq", () => {
  it("quotes any string so bash reads it back unchanged", () => {
    for (const s of ["plain", "it's", "a b\tc", "$(rm -rf /)", "`x` \"y\" \\z", "'''", "", "新 ✓\nline"]) {
      const r = spawnSync("bash", ["-c", `printf '%s' ${shq(s)}`], { encoding: "utf8" });
      expect(r.stdout).toBe(s);
    }
  });
});

describe("versionAtLeast", () => {
  it("compares dotted versions numerically and never accepts an unknown one", () => {
    expect(versionAtLeast("3.2.7", "3.1.3")).toBe(true);
    expect(versionAtLeast("3.1.2", "3.1.3")).toBe(false);
    expect(versionAtLeast("12.2", "11.8")).toBe(true);
    expect(versionAtLeast("11.10", "11.8")).toBe(true);
    expect(versionAtLeast("12", "12.0")).toBe(true);
    expect(versionAtLeast("", "1")).toBe(false);
    expect(versionAtLeast("n/a", "1")).toBe(false);
  });
});
