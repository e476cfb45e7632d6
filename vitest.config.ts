import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Integration tests start real sshd/tmux/slurm daemons; two cores only, so keep files sequential-ish.
    fileParallelism: true,
    maxWorkers: 2,
    pool: "forks",
  },
});
