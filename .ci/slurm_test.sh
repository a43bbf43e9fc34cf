#!/usr/bin/env bash
# CI step: the workflow against a real single-node SLURM on localhost (issue 6).
# Needs root and apt-get: installs Debian's munge, slurmctld, slurmd and slurm-client,
# starts the daemons with state and logs in a temp dir, runs tests/slurm with marker
# `slurm` (plus the fast pre-flight, W1 and dry-run tests) and stops every daemon it
# started. About 3-4 minutes. GREENPATH_REQUIRE_SLURM=1: a cluster that cannot start is
# a failure here, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "slurm_test.sh: needs root and apt-get; skipping the real-SLURM tests" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
fi
make setup
GREENPATH_REQUIRE_SLURM=1 GREENPATH_SLURM_TESTS=1 .venv/bin/pytest -q tests/slurm
