#!/usr/bin/env bash
# Issue 10, item 5: README's main command in full mode (every bundled notebook in the real kernel), from fresh run
# stores, with the load average before and after and each notebook's wall time as the runner reports it.
# Usage: build/measure-full-mode.sh [OUT]   (needs ../shared/data; notebook 05 needs Slurm up: .ci/start-slurm.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-reports}"
tmp="${TMPDIR:-/tmp}"
# The full-mode run stores the notebooks resume from (02's sweeps, 04's experiments, pre-trained weights).
rm -f "$tmp"/scaling-interactive/02-proxies-full*.jsonl "$tmp"/si-lora-* 2>/dev/null || true
export SLURM_CONF="${SLURM_CONF:-/tmp/si-slurm/slurm.conf}"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
dotnet build src/ScalingInteractive.Runner -c Release -v q -nologo >/dev/null
start=$(date +%s)
set +e
dotnet run --project src/ScalingInteractive.Runner -c Release --no-build -- notebooks --out "$out" --data ../shared/data 2>&1 | tee "$out.log" | grep -E '^(PASS|FAIL)|notebook\(s\) passed'
status=${PIPESTATUS[0]}
set -e
echo "# README's main command, full mode: $(( $(date +%s) - start )) s in all; load average at end: $(cut -d' ' -f1-3 /proc/loadavg); log $out.log"
exit "$status"
