/**
 * The seatbelt on a real lab box: a provider CLI reached through a path no static reading can see (a
 * script written ON the box, not pushed) is stopped by the shim first on PATH, reported as
 * DESTROY_BLOCKED_ON_BOX by remote_exec and by run_status, and the recording provider stub (the "real"
 * vastai, later on PATH) records no destroy — while `vastai show instances` passes through to it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLab, type Box, type Lab } from "../../src/lab/box.js";
import { connectServer, type ServerConnection } from "../../src/lab/client.js";

let lab: Lab;
let box: Box;
let s: ServerConnection;
const calls = (): string => (fs.existsSync(path.join(box.dir, "vastai-calls.log")) ? fs.readFileSync(path.join(box.dir, "vastai-calls.log"), "utf8") : "");

beforeAll(async () => {
  lab = await startLab([{ name: "sb1", gpus: 1 }]);
  box = lab.boxes.sb1;
  // the "real" provider CLI: a stub that records its argv (on the box PATH, after the shim dir)
  fs.writeFileSync(path.join(box.dir, "bin", "vastai"), `#!/bin/bash\necho "vastai $*" >> ${path.join(box.dir, "vastai-calls.log")}\necho "ID  Machine  Status"\n`, { mode: 0o755 });
  s = await connectServer(lab.env);
  await s.client.listTools();
}, 120_000);

afterAll(async () => {
  await s?.close();
  await lab?.stop();
});

describe("seatbelt", () => {
  it("remote_exec: a destroy written into a script on the box is stopped and reported; other subcommands pass", async () => {
    // writing the script is harmless, and is allowed; running it later is what no static reading of that call can see
    const w = await s.call("remote_exec", { host: "sb1", command: "printf '#!/bin/bash\\nvastai destroy instance 4242\\n' > /tmp/d.sh" });
    expect(w.ok, JSON.stringify(w.refused)).toBe(true);
    const r = await s.call("remote_exec", { host: "sb1", command: "bash /tmp/d.sh; echo rc=$?; vastai show instances" });
    expect(r.refused?.code).toBe("DESTROY_BLOCKED_ON_BOX");
    expect(r.stdout_tail).toContain("rc=126");
    expect(r.stdout_tail).toContain("ID  Machine");
    expect(calls()).toContain("vastai show instances");
    expect(calls()).not.toContain("destroy");
  });

  it("sudo, which resets PATH, still meets the shim: a destroy under sudo in a script written on the box is stopped", async () => {
    // a stand-in for sudo's secure_path: the command runs with a PATH that no longer holds the shim dir
    fs.writeFileSync(path.join(box.dir, "bin", "sudo"), `#!/bin/bash\nwhile [ $# -gt 0 ]; do case $1 in -u) shift 2;; -*) shift;; *) break;; esac; done\nPATH=/usr/sbin:/usr/bin:/sbin:/bin:${path.join(box.dir, "bin")} exec "$@"\n`, { mode: 0o755 });
    const w = await s.call("remote_exec", { host: "sb1", command: "printf '#!/bin/bash\\nsudo -u root vastai destroy instance 5151\\n' > /tmp/sd.sh" });
    expect(w.ok, JSON.stringify(w.refused)).toBe(true);
    const r = await s.call("remote_exec", { host: "sb1", command: "bash /tmp/sd.sh; echo rc=$?; sudo vastai show instances" });
    expect(r.refused?.code).toBe("DESTROY_BLOCKED_ON_BOX");
    expect(r.stdout_tail).toContain("rc=126");
    expect(calls()).not.toContain("5151");
    expect(calls().match(/show instances/g)?.length).toBeGreaterThanOrEqual(2);
  });

  it("launch_queue: a cell that reaches the CLI at run time is stopped; run_status reports DESTROY_BLOCKED_ON_BOX", async () => {
    const l = await s.call("launch_queue", {
      host: "sb1", run_name: "seatbelt", workdir: "/tmp",
      // python writes the script (no process call in it), the shell runs it: invisible to the static layer
      cells: [{ name: "c1", gpus: 0, command: "python3 -c \"open('/tmp/e.sh','w').write('#!/bin/bash\\nvastai --raw destroy instance 777\\n')\"; chmod +x /tmp/e.sh; /tmp/e.sh; vastai show instances; true" }],
    });
    expect(l.ok, JSON.stringify(l.refused)).toBe(true);
    let st: any;
    for (let i = 0; i < 60; i++) {
      st = await s.call("run_status", { run_id: l.run_id });
      if (st.cells?.every((c: any) => c.state === "done" || c.state === "failed")) break;
      await new Promise((res) => setTimeout(res, 1000));
    }
    const w = (st.warnings ?? []).find((x: any) => x.code === "DESTROY_BLOCKED_ON_BOX");
    expect(w, JSON.stringify(st)).toBeTruthy();
    expect(st.cells[0].destroy_blocked).toContain("vastai");
    expect(calls()).not.toContain("destroy");
    expect(calls().match(/show instances/g)?.length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
