#!/usr/bin/env bash
# Issue 11's figures: one sweep spec run locally by one worker process, then as a 3-task Slurm array on the cluster
# that .ci/start-slurm.sh starts; prints wall times, submit-to-first-record latency and bytes per run record.
# Usage: build/measure-slurm-sweep.sh SPEC.json WORKER.dll   (e.g. the spec notebook 05 writes, and
#        tests/ScalingInteractive.Tests/bin/Debug/net10.0/linux-x64/ScalingInteractive.Worker.dll)
set -u
spec=${1:?spec.json}; worker=${2:?ScalingInteractive.Worker.dll}
export SLURM_CONF=${SLURM_CONF:-/tmp/si-slurm/slurm.conf}
m=$(mktemp -d /tmp/si-measure-XXXX); mkdir -p "$m/local" "$m/array/logs" "$m/array/store"
cp "$spec" "$m/spec.json"
echo "spec: $spec ($(grep -c '"key"' "$m/spec.json") runs); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N); dotnet "$worker" --spec "$m/spec.json" --shard 0/1 --store "$m/local/store" --threads 1 >"$m/local/log" 2>&1; t1=$(date +%s.%N)
echo "local, one worker process: $(echo "$t1 - $t0" | bc) s"
cat >"$m/array/sweep.sbatch" <<SB
#!/usr/bin/env bash
#SBATCH --job-name=si-measure
#SBATCH --cpus-per-task=1
#SBATCH --output=$m/array/logs/%A_%a.log
dotnet "$worker" --spec "$m/spec.json" --shards 3 --store "$m/array/store" --threads 1
echo \$? > "$m/array/logs/\${SLURM_ARRAY_JOB_ID}_\${SLURM_ARRAY_TASK_ID}.exit"
SB
t0=$(date +%s.%N); job=$(sbatch --parsable --array=0-2 "$m/array/sweep.sbatch"); first=""
while :; do
  now=$(date +%s.%N)
  if [ -z "$first" ] && [ "$(cat "$m"/array/store/shard-*.jsonl 2>/dev/null | grep -c '"key"')" -gt 0 ]; then first=$(echo "$now - $t0" | bc); fi
  [ "$(ls "$m"/array/logs/*.exit 2>/dev/null | wc -l)" -eq 3 ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
echo "array job $job (3 tasks): submit to last exit $(echo "$t1 - $t0" | bc) s; submit to first record $first s; exit codes: $(cat "$m"/array/logs/*.exit | tr '\n' ' ')"
recs=$(cat "$m"/array/store/shard-*.jsonl | grep -c '"key"'); bytes=$(cat "$m"/array/store/shard-*.jsonl | grep '"key"' | wc -c)
echo "records $recs, $((bytes / recs)) bytes per record (with newline); header $(head -1 "$m/array/store/shard-0000.jsonl" | wc -c) bytes per shard file; load after: $(cut -d' ' -f1-3 /proc/loadavg)"
