/**
 * scripts/probe.sh run for real (bash, coreutils, Debian's python3 with torch) on this machine: its fast torch
 * check must agree with what the interpreter would import — venvs with and without system site-packages,
 * and the system interpreter — and the document must be valid JSON even with odd mount paths.
 */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const script = path.resolve(__dirname, "..", "..", "scripts", "probe.sh");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "rgt-probe-"));
const probe = (...args: string[]) => JSON.parse(execFileSync("bash", [script, ...args], { encoding: "utf8", env: { ...process.env, HOME: tmp } }));
const imports = (py: string) => spawnSync(py, ["-c", "import torch"], { encoding: "utf8" }).status === 0;

beforeAll(() => {
  if (!fs.existsSync("/usr/bin/python3")) throw new Error("Debian's /usr/bin/python3 (with python3-torch) is required: run test/ci.sh");
  execFileSync("/usr/bin/python3", ["-m", "venv", "--without-pip", path.join(tmp, "isolated")]);
  execFileSync("/usr/bin/python3", ["-m", "venv", "--without-pip", "--system-site-packages", path.join(tmp, "shared")]);
}, 60_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe("probe.sh python facts", () => {
  it("finds torch in the system interpreter without importing it", () => {
    expect(imports("/usr/bin/python3")).toBe(true);
    const r = probe("--python", "/usr/bin/python3");
    expect(r.python.torch?.method).toBe("metadata");
    expect(r.python.torch.version).toMatch(/^\d+\.\d+/);
    expect(r.python.version).toMatch(/^3\.\d+$/);
  });

  it("agrees with the interpreter for venvs with and without system site-packages", () => {
    for (const v of ["isolated", "shared"]) {
      const py = path.join(tmp, v, "bin", "python3");
      const r = probe("--python", py);
      expect(r.python.path).toBe(py);
      expect(r.python.torch !== null).toBe(imports(py));
    }
    expect(imports(path.join(tmp, "isolated", "bin", "python3"))).toBe(false);
  });

  it("reports a missing interpreter as null and stays valid JSON with awkward paths", () => {
    const odd = path.join(tmp, 'dir with "quotes" and\ttab');
    fs.mkdirSync(odd);
    const r = probe("--python", "/nonexistent/python3", "--mount", odd, "--mount", "/no/such/mount", "--path", "/etc", "--env", "HOME", "--cmd", "bash");
    expect(r.python).toBeNull();
    expect(r.disks.find((d: { path: string }) => d.path === odd).exists).toBe(true);
    expect(r.disks.find((d: { path: string }) => d.path === "/no/such/mount").exists).toBe(false);
    expect(r.markers.paths).toEqual(["/etc"]);
    expect(r.markers.env).toEqual(["HOME"]);
    expect(r.markers.commands).toEqual(["bash"]);
    expect(r.gpus).toEqual([]);
  });
});
