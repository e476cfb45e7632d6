/**
 * The little project `rgt demo` pushes to its box: one training script and a README. It runs on CPU in
 * a few seconds. With torch importable it fits a small two-layer net and saves its weights with
 * torch.save (so pull_verify can load-check them); without torch a pure-Python stand-in fits a line
 * and saves JSON weights under the same file name pattern, chosen by `--format`.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const TRAIN_PY = `#!/usr/bin/env python3
"""Demo sweep cell: fit y = 3x - 1 (plus noise) for a fixed number of steps.

Reads its learning rate from $LR and writes into $RGT_OUTPUT_DIR (the cell's own output folder):
weights (best.pth with torch, best.json without) and metrics.json. If $DEMO_KEY_FILE names a file,
the script checks that it exists and is private, and never prints what is inside it.
"""
import json
import os
import random
import stat
import sys
import time

STEPS = int(os.environ.get("DEMO_STEPS", "40"))
LR = float(os.environ.get("LR", "0.05"))
OUT = os.environ.get("RGT_OUTPUT_DIR") or "out"
os.makedirs(OUT, exist_ok=True)

key_file = os.environ.get("DEMO_KEY_FILE")
if key_file:
    st = os.stat(os.path.expanduser(key_file))
    private = (st.st_mode & 0o077) == 0
    print("api key file found, %d bytes, private=%s" % (st.st_size, private), flush=True)

rng = random.Random(7)
xs = [rng.uniform(-1.0, 1.0) for _ in range(256)]
ys = [3.0 * x - 1.0 + rng.gauss(0.0, 0.05) for x in xs]

try:
    import torch
except ImportError:
    torch = None


def write_json(name, obj):
    tmp = os.path.join(OUT, name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh)
    os.replace(tmp, os.path.join(OUT, name))


best = None
if torch is not None:
    torch.manual_seed(0)
    X = torch.tensor(xs).unsqueeze(1)
    Y = torch.tensor(ys).unsqueeze(1)
    net = torch.nn.Sequential(torch.nn.Linear(1, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(X), Y)
        loss.backward()
        opt.step()
        value = float(loss)
        if best is None or value < best:
            best = value
            tmp = os.path.join(OUT, "best.pth.tmp")
            torch.save(net.state_dict(), tmp)
            os.replace(tmp, os.path.join(OUT, "best.pth"))
        if step % 10 == 0 or step == STEPS:
            print("step %d/%d loss %.5f" % (step, STEPS, value), flush=True)
        time.sleep(0.02)
    backend = "torch " + torch.__version__
else:
    w, b = 0.0, 0.0
    n = float(len(xs))
    for step in range(1, STEPS + 1):
        gw = sum(2.0 * (w * x + b - y) * x for x, y in zip(xs, ys)) / n
        gb = sum(2.0 * (w * x + b - y) for x, y in zip(xs, ys)) / n
        w -= LR * gw
        b -= LR * gb
        value = sum((w * x + b - y) ** 2 for x, y in zip(xs, ys)) / n
        if best is None or value < best:
            best = value
            write_json("best.json", {"w": w, "b": b})
        if step % 10 == 0 or step == STEPS:
            print("step %d/%d loss %.5f" % (step, STEPS, value), flush=True)
        time.sleep(0.02)
    backend = "pure python %d.%d" % sys.version_info[:2]

write_json("metrics.json", {"lr": LR, "steps": STEPS, "best_loss": best, "backend": backend})
print("finished: best loss %.5f (%s)" % (best, backend), flush=True)
`;

export const README_MD = `# demo project

One script, \`train.py\`, run as a three-cell learning-rate sweep by \`rgt demo\`.
`;

/** Write the demo project into dir (created). Returns the files written. */
export function writeProject(dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "train.py"), TRAIN_PY, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, "README.md"), README_MD);
  return ["train.py", "README.md"];
}
