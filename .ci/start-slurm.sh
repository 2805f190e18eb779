#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine for the tests and notebook 05 (settings: ../shared/PLATFORM-NOTES.md,
# "A real Slurm runs here"). Idempotent: when the cluster already answers it says so and returns. Everything Slurm
# writes (state, spool, logs, pids) lives under SI_SLURM_DIR (default /tmp/si-slurm); the tests and notebooks find the
# configuration at $SI_SLURM_DIR/slurm.conf when SLURM_CONF is not set.
# Usage: .ci/start-slurm.sh   (as root; installs Debian's slurmctld slurmd slurm-client munge when missing)
set -euo pipefail
dir=${SI_SLURM_DIR:-/tmp/si-slurm}
conf=$dir/slurm.conf
export SLURM_CONF=$conf
host=$(hostname -s)
cpus=${SI_SLURM_CPUS:-$(nproc)}

up() { [ -f "$conf" ] && timeout 10 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated|completing)'; }

if command -v sinfo >/dev/null 2>&1 && up; then
  echo "Slurm is already up (SLURM_CONF=$conf): $(sinfo -h -o '%P %T %D' | head -1)"
  exit 0
fi

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  echo "Installing slurmctld slurmd slurm-client munge ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge) >"${TMPDIR:-/tmp}/si-slurm-apt.log" 2>&1 \
    || { echo "apt-get install of Slurm failed:"; tail -20 "${TMPDIR:-/tmp}/si-slurm-apt.log"; exit 1; }
fi

# munge: key owned by munge, mode 400; the daemon runs as user munge with /run/munge owned by munge.
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key; chmod 755 /run/munge
if ! pgrep -u munge -x munged >/dev/null 2>&1; then
  su -s /bin/sh munge -c "/usr/sbin/munged" || { echo "munged did not start"; exit 1; }
fi

mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
cat >"$conf" <<CONF
# Single-node Slurm for ScalingInteractive's tests (written by .ci/start-slurm.sh).
ClusterName=si-test
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# No slurmdbd here: sacct has no data, so status reads squeue plus the per-task exit files the sbatch script writes.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# Stale daemons from an earlier configuration would keep the old settings.
for pid in "$dir/run/slurmctld.pid" "$dir/run/slurmd.pid"; do
  if [ -s "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null; then kill "$(cat "$pid")" 2>/dev/null || true; sleep 1; fi
done
slurmctld -f "$conf"
slurmd -f "$conf"

for _ in $(seq 1 30); do
  if up; then
    scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true
    echo "Slurm is up (SLURM_CONF=$conf): $(sinfo -h -o '%P %T %D CPUs=%c' | head -1)"
    exit 0
  fi
  sleep 1
done
echo "Slurm did not come up within 30 s; logs in $dir/log:"
tail -5 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" 2>/dev/null
exit 1
