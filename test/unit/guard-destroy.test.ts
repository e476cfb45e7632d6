import { describe, expect, test } from "vitest";
import { assertNotDestructive, findDestroys, type DestroyContext, type DestroyKind } from "../../src/guard/destroy.js";
import { RefusalError } from "../../src/common/result.js";

const ctx: DestroyContext = { protectedPaths: ["/root/autodl-tmp", "/root/autodl-fs", "/data/runs/sweep-a"], ownJobIds: ["4242", "5001"] };
const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** plain, readable destroys: [command, expected kind] */
const PLAIN: [string, DestroyKind][] = [
  ["rm -rf /root/autodl-tmp", "delete"],
  ["rm -rf /", "delete"],
  ["rm -rf ~", "delete"],
  ["rm -r checkpoints", "delete"],
  ["rm ckpt_epoch_12_step_4000.pt", "delete"],
  ["find /root/autodl-fs -name '*.log' -delete", "delete"],
  ["truncate -s 0 /root/autodl-tmp/out/best.pth", "truncate"],
  ["dd if=/dev/zero of=/dev/nvme0n1 bs=1M", "disk"],
  ["mkfs.ext4 /dev/vdb", "disk"],
  ["wipefs -a /dev/sdb", "disk"],
  ["shred -u model.safetensors", "disk"],
  ["vastai destroy instance 7311", "instance"],
  ["runpodctl remove pod 9xk2", "instance"],
  ["curl -X POST https://cloud.lambdalabs.com/api/v1/instance-operations/terminate -H 'Content-Type: application/json' -d '{\"instance_ids\":[\"i1\"]}'", "instance"],
  ["pspace machine destroy --id psq3", "instance"],
  ["kubectl delete job sweep-a", "k8s"],
  ["scancel 999", "scancel"],
  ["shutdown -h now", "power"],
  ["poweroff", "power"],
  ["init 0", "power"],
  ["systemctl poweroff", "power"],
  ["autodl-cli 释放 inst-1", "instance"],
];

/** the same and more, hidden behind quoting, wrappers, nesting and indirection */
const OBFUSCATED: [string, DestroyKind][] = [
  ["r\\m -rf /root/autodl-tmp", "delete"],
  ["\\rm -rf $HOME", "delete"],
  ["'r''m' -rf /root/autodl-fs", "delete"],
  ["\"rm\" -fr /root", "delete"],
  ["/usr/bin/rm -Rf /root/autodl-tmp/", "delete"],
  ["$'\\x72\\x6d' -rf /root/autodl-tmp", "delete"],
  ["echo starting; rm -rf /root/autodl-tmp/*", "delete"],
  ["true && rm --recursive --force outputs/", "delete"],
  ["cd /root/autodl-tmp && rm -rf *", "delete"],
  ["D=/root/autodl-fs; rm -rf \"$D\"", "delete"],
  ["export T=/data/runs; rm -rf ${T}/sweep-a", "delete"],
  ["rm -rf \"$UNSET_DIR\"", "delete"],
  ["rm -rf /root/$SUBDIR", "delete"],
  ["rm -rf /root/{autodl-tmp,scratch}", "delete"],
  ["echo $(rm -rf /root/autodl-tmp)", "delete"],
  ["echo `rm -rf ~/`", "delete"],
  ["eval 'rm -rf /root/autodl-tmp'", "delete"],
  ["bash -c \"sh -c 'rm -rf /root/autodl-tmp'\"", "delete"],
  ["bash -lc 'cd /root && rm -rf autodl-fs'", "delete"],
  ["sudo -u root nohup timeout 60 nice -n 10 rm -rf /root/autodl-fs", "delete"],
  ["env -i PATH=/bin rm -rf /root/autodl-tmp", "delete"],
  ["env -S 'rm -rf /root'", "delete"],
  // decoded text fed to a shell is opaque: refused as such (issue 12), not decoded and guessed
  [`echo ${b64("rm -rf /root/autodl-tmp")} | base64 -d | bash`, "obfuscated"],
  ["rsync -a --delete ./src/ /root/autodl-tmp/code/src/", "delete"],
  ["bash <<'EOS'\nrm -rf /root/autodl-tmp\nEOS", "delete"],
  ["ls ckpts | xargs rm -rf", "delete"],
  ["find /data/runs/sweep-a -type f | xargs -0 rm -f", "delete"],
  ["find . -name '*.safetensors' -exec rm {} +", "delete"],
  ["python3 -c \"import shutil; shutil.rmtree('/root/autodl-tmp/ckpt')\"", "delete"],
  ["python -c 'import os; os.system(\"poweroff\")'", "power"],
  ["tmux new -d -s clean 'rm -rf /root/autodl-fs'", "delete"],
  ["ssh gpu1 rm -rf /root/autodl-tmp", "delete"],
  ["rsync -a --delete /tmp/empty/ /root/autodl-fs/", "delete"],
  [": > ckpt_epoch_3.pt", "truncate"],
  ["cat /dev/null > best.pth", "truncate"],
  ["sudo /sbin/shutdown -r +1", "power"],
  ["(sleep 5; reboot) &", "power"],
  ["kill -9 -1", "power"],
  ["echo o > /proc/sysrq-trigger", "power"],
  ["command vastai destroy instance 7311", "instance"],
  ["VAST_API_KEY=$K /usr/local/bin/vastai destroy instances 1 2", "instance"],
  ["curl -s -X POST https://api.runpod.io/graphql -d '{\"query\":\"mutation { podTerminate(input: {podId: \\\"x\\\"}) }\"}'", "instance"],
  ["scancel -u alice", "scancel"],
  ["scancel $JOB", "scancel"],
  ["timeout 10 kubectl -n ml delete pod --all", "k8s"],
  ["docker exec box rm -rf /root/autodl-tmp", "delete"],
  ["watch -n 60 rm -rf /root/autodl-fs/old", "delete"],
  ["if true; then rm -rf /root; fi", "delete"],
  ["X=$(mktemp -d); rm -rf $X/../..", "delete"],
];

/** look-alikes that must pass */
const BENIGN: string[] = [
  "rm -rf /tmp/scratch",
  "rm -rf ./build",
  "rm -rf build dist __pycache__ .pytest_cache",
  "rm ckpt_tmp.part",
  "rm -f /tmp/lock",
  "rm -rf ~/.cache/pip",
  "rm -rf /tmp/run_$RUN_ID",
  "rm \"$TMPFILE\"",
  "scancel 4242",
  "scancel 4242_7 5001",
  "kubectl get pods -o wide",
  "kubectl logs job/sweep-a --tail 50",
  "echo shutdown",
  "echo 'rm -rf /root/autodl-tmp'",
  "printf 'vastai destroy instance %s\\n' 1",
  "grep destroy log.txt",
  "grep -rn 'kubectl delete' docs/",
  "man shutdown",
  "which reboot",
  "command -v rm",
  "git commit -m 'rm -rf checkpoints'",
  "shutdown -c",
  "find /tmp -name '*.pyc' -delete",
  "find . -name __pycache__ -exec rm -rf {} +",
  "truncate -s 0 /tmp/train.log",
  "truncate -s 20G /root/autodl-tmp/swapfile",
  "cp best.pt /root/autodl-fs/",
  "dd if=/dev/zero of=/tmp/testfile bs=1M count=10",
  "vastai show instances",
  "vastai stop instance 7311",
  "runpodctl get pod",
  "curl -s https://cloud.lambdalabs.com/api/v1/instances",
  "python train.py --output_dir outputs/run1 --save_steps 500",
  "ls -la checkpoints/ && du -sh /root/autodl-tmp",
  "tar czf out.tgz checkpoints/",
  "mkdir -p /root/autodl-tmp/ckpt && cp -r ckpt /root/autodl-fs/",
  "rsync -a --delete ./src/ /tmp/code/src/",
  "history | grep reboot",
  "kill -9 12345",
  "kill %1",
  "tmux kill-session -t old",
  "python -c \"print('shutdown')\"",
  "echo 'vastai destroy instance 5' >> notes.txt",
  "cat >> notes.md <<'EOF'\nrm -rf /root/autodl-tmp  # never do this\nEOF",
  "export TOKENIZERS_PARALLELISM=false; systemctl status sshd",
  "nvidia-smi --query-gpu=index,memory.used --format=csv",
  "pip uninstall -y torch",
];

describe("destroy corpus", () => {
  test("corpus sizes", () => {
    expect(PLAIN.length + OBFUSCATED.length).toBeGreaterThanOrEqual(40);
    expect(OBFUSCATED.length).toBeGreaterThanOrEqual(30);
    expect(BENIGN.length).toBeGreaterThanOrEqual(30);
  });

  test(`all ${PLAIN.length} plain + ${OBFUSCATED.length} obfuscated destroys are caught with the right kind`, () => {
    const wrong: string[] = [];
    for (const [cmd, kind] of [...PLAIN, ...OBFUSCATED]) {
      const f = findDestroys(cmd, ctx);
      if (!f.some((x) => x.kind === kind)) wrong.push(`${cmd} -> ${JSON.stringify(f)}`);
    }
    console.log(`destroys: ${PLAIN.length + OBFUSCATED.length - wrong.length}/${PLAIN.length + OBFUSCATED.length} caught (${OBFUSCATED.length} obfuscated)`);
    expect(wrong).toEqual([]);
  });

  test(`none of ${BENIGN.length} benign look-alikes is flagged`, () => {
    const flagged = BENIGN.map((c) => [c, findDestroys(c, ctx)] as const).filter(([, f]) => f.length > 0).map(([c, f]) => `${c} -> ${JSON.stringify(f)}`);
    console.log(`destroy look-alikes: ${flagged.length}/${BENIGN.length} flagged`);
    expect(flagged).toEqual([]);
  });
});

describe("findDestroys details", () => {
  test("the finding names the verb and why the target matters", () => {
    const [f] = findDestroys("sudo rm -rf /root/autodl-tmp", ctx);
    expect(f).toEqual({ kind: "delete", verb: "rm -rf", detail: expect.stringContaining("protected /root/autodl-tmp") });
    const [g] = findDestroys("rm -rf /root", ctx);
    expect(g!.detail).toContain("home directory");
  });

  test("unresolvable targets: dangerous only when recursive AND forced", () => {
    expect(findDestroys("rm -rf $X", ctx)).toHaveLength(1);
    expect(findDestroys("rm -r $X", ctx)).toEqual([]);
    expect(findDestroys("rm -f $X", ctx)).toEqual([]);
    expect(findDestroys("rm -rf $(cat dirs.txt)", ctx)[0]!.detail).toContain("cannot be resolved");
  });

  test("assignments on the same line are followed, and a later reassignment wins", () => {
    expect(findDestroys("D=/tmp/x; rm -rf $D", ctx)).toEqual([]);
    expect(findDestroys("D=/tmp/x; D=/root/autodl-fs; rm -rf $D", ctx)).toHaveLength(1);
    expect(findDestroys("unset D; rm -rf /tmp/$D", ctx)).toEqual([]);
  });

  test("ctx.cwd resolves relative targets; without it `.` is unknown", () => {
    expect(findDestroys("rm -rf *", { ...ctx, cwd: "/tmp/work" })).toEqual([]);
    expect(findDestroys("rm -rf *", { ...ctx, cwd: "/root/autodl-tmp" })).toHaveLength(1);
    expect(findDestroys("rm -rf .", ctx)).toHaveLength(1);
    expect(findDestroys("rm -rf sub", { ...ctx, cwd: "/root/autodl-fs" })[0]!.detail).toContain("inside protected /root/autodl-fs");
  });

  test("ctx.home and paths above a protected dir", () => {
    expect(findDestroys("rm -rf ~", { ...ctx, home: "/home/ubuntu" })[0]!.detail).toContain("/home/ubuntu");
    expect(findDestroys("rm -rf /data/runs", ctx)[0]!.detail).toContain("contains protected /data/runs/sweep-a");
    expect(findDestroys("rm -rf /data/other-project/tmp", ctx)).toEqual([]);
  });

  test("scancel: own ids (and their array tasks) pass, anything else is refused", () => {
    expect(findDestroys("scancel 4242", ctx)).toEqual([]);
    expect(findDestroys("scancel 4242_3", ctx)).toEqual([]);
    expect(findDestroys("scancel --signal=USR1 4242", ctx)).toEqual([]);
    expect(findDestroys("scancel 4242 777", ctx)[0]!.detail).toContain("777");
    expect(findDestroys("scancel 4242", { protectedPaths: [] })).toHaveLength(1);
    expect(findDestroys("scancel --name=sweep", ctx)).toHaveLength(1);
  });

  test("deep nesting is refused as obfuscated instead of guessed; shallow nesting is read", () => {
    const nest = (n: number, inner: string): string => (n === 0 ? inner : `echo $(${nest(n - 1, inner)})`);
    expect(findDestroys(nest(12, "true"), ctx).map((f) => f.kind)).toEqual(["obfuscated"]);
    expect(findDestroys(nest(3, "true"), ctx)).toEqual([]);
    expect(findDestroys(nest(3, "rm -rf /root/autodl-fs"), ctx)[0]!.kind).toBe("delete");
  });

  test.each([
    "rm -rf -- /root/autodl-tmp",
    "rm -rf /tmp/../root/autodl-fs",
    "r\"\"m -rf /root",
    "$(echo rm) -rf /root/autodl-tmp",
    "exec rm -rf /root/autodl-tmp",
    "busybox rm -rf /root/autodl-tmp",
    "rm -rf //root//autodl-tmp/./",
    "rm -rf /root/autodl-tmp\n",
  ])("more spellings are caught: %s", (cmd) => {
    expect(findDestroys(cmd, ctx).length).toBeGreaterThan(0);
  });

  test("text transformed before reaching a shell is refused as obfuscated", () => {
    expect(findDestroys("echo 'ez -es /' | tr a-z b-za | sh", ctx)[0]!.kind).toBe("obfuscated");
  });

  test("robust to junk input", () => {
    for (const junk of ["", "   ", "'unterminated", "\"also", "$(", "`", "((((", ")", "${", "rm -rf '", "<<<", "|||&&;;", "\\"]) {
      expect(() => findDestroys(junk, ctx)).not.toThrow();
    }
    expect(findDestroys("rm -rf '/root/autodl-tmp", ctx)).toHaveLength(1); // an unterminated quote still reaches the end
  });

  test("fast enough for every call: a 2 KB script is judged in a few ms", () => {
    const script = Array.from({ length: 40 }, (_, i) => `python train.py --seed ${i} --out outputs/s${i} && echo done-${i}`).join("\n");
    expect(script.length).toBeGreaterThan(2000);
    for (let i = 0; i < 30; i++) findDestroys(script, ctx); // warm the JIT
    let best = Infinity;
    for (let b = 0; b < 5; b++) {
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) findDestroys(script, ctx);
      best = Math.min(best, (performance.now() - t0) / 20);
    }
    console.log(`findDestroys on a ${script.length} B script: ${best.toFixed(2)} ms`);
    expect(best).toBeLessThan(5);
  });
});

describe("assertNotDestructive", () => {
  test("instance destroys point at request_teardown", () => {
    try {
      assertNotDestructive("vastai destroy instance 7311", ctx);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(RefusalError);
      const r = (e as RefusalError).refusal;
      expect(r.code).toBe("DESTROY_UNAPPROVED");
      expect(r.reason).toContain("vastai destroy");
      expect(r.remedy).toContain("request_teardown");
      expect((e as RefusalError).extra.destroys).toHaveLength(1);
    }
  });

  test("data deletes say: pull_verify first, then delete by hand", () => {
    try {
      assertNotDestructive("rm -rf /root/autodl-tmp/ckpt", ctx);
      expect.unreachable();
    } catch (e) {
      const r = (e as RefusalError).refusal;
      expect(r.remedy).toContain("pull_verify");
      expect(r.remedy).toMatch(/by hand/);
      expect(r.remedy).not.toContain("request_teardown");
    }
  });

  test("benign commands pass", () => {
    expect(() => assertNotDestructive("cd /root/autodl-tmp && python train.py --resume ckpt/last.pt", ctx)).not.toThrow();
  });
});
