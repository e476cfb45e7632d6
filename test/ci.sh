#!/usr/bin/env bash
# The whole test run, as CI and a newcomer run it: installs what the tests need (Debian packages as root,
# only those missing; npm packages), builds, runs the vitest suite (unit + integration against real sshd,
# rsync, tmux, Slurm) and the eval replay, lints (npm run lint: the layer rules of docs/ARCHITECTURE.md), and ends with one plain "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."

PKGS=(openssh-server openssh-client rsync tmux slurm-wlm slurm-client munge python3 python3-venv python3-torch python3-numpy iproute2 procps util-linux psmisc)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "test/ci.sh: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null || { echo "apt-get install failed" >&2; exit 1; }
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund || exit 1
fi
npm run build || exit 1
lint_rc=0
npm run lint || lint_rc=$?

mkdir -p .rgt-test
vitest_rc=0
npx vitest run --reporter=default --reporter=json --outputFile=.rgt-test/vitest.json || vitest_rc=$?
evals_rc=0
node dist/cli/main.js evals | tee .rgt-test/evals.log || evals_rc=$?

node -e '
const fs = require("fs");
let p = 0, f = 0;
try { const j = JSON.parse(fs.readFileSync(".rgt-test/vitest.json", "utf8")); p += j.numPassedTests; f += j.numFailedTests + (j.numTotalTestSuites && j.success === false && j.numFailedTests === 0 ? 1 : 0); } catch { f += 1; }
const m = /^(\d+) passed, (\d+) failed$/m.exec(fs.readFileSync(".rgt-test/evals.log", "utf8"));
if (m) { p += +m[1]; f += +m[2]; } else f += 1;
console.log(`${p} passed, ${f} failed`);
'
[ $lint_rc -eq 0 ] || echo "lint failed (npm run lint)"
[ $vitest_rc -eq 0 ] && [ $evals_rc -eq 0 ] && [ $lint_rc -eq 0 ]
