#!/usr/bin/env bash
# A one-node Slurm cluster (slurmctld + slurmd on this machine, munge for authentication) living entirely in DIR:
# config, key, state, spool, logs and pid files. For trying job arrays and for the integration test; not for
# production. Needs root (slurmd runs jobs as their submitting user) and the Debian packages slurm-wlm and munge.
#
#   tools/slurm/local-cluster.sh start DIR    # prints: export SLURM_CONF=DIR/slurm.conf
#   SLURM_CONF=DIR/slurm.conf sbatch --array=0-3 tools/slurm/index-array.sbatch ...
#   tools/slurm/local-cluster.sh stop DIR
#
# Ports default to 16817 (slurmctld) and 16818 (slurmd), away from a real cluster's 6817/6818; set
# SLURM_LOCAL_CTLD_PORT / SLURM_LOCAL_SLURMD_PORT to run two clusters side by side.
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
ctld_port="${SLURM_LOCAL_CTLD_PORT:-16817}"
slurmd_port="${SLURM_LOCAL_SLURMD_PORT:-16818}"

stop_pid() { # pidfile: stop that process (only it) and wait up to 10 s for it to go
  local file="$1" pid
  [ -f "$file" ] || return 0
  pid="$(cat "$file" 2>/dev/null || true)"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

case "$action" in
  start)
    [ "$(id -u)" -eq 0 ] || { echo "$0: must run as root (slurmd starts jobs as their user)" >&2; exit 1; }
    for tool in munged slurmctld slurmd sbatch scontrol; do
      command -v "$tool" >/dev/null || { echo "$0: $tool not found: apt-get install slurm-wlm munge" >&2; exit 1; }
    done
    host="$(hostname -s)"
    cpus="$(nproc)"
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
    chmod 0700 "$dir/munge"
    if [ ! -f "$dir/munge/munge.key" ]; then
      head -c 1024 /dev/urandom > "$dir/munge/munge.key"
      chmod 0400 "$dir/munge/munge.key"
    fi
    munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
      --seed-file="$dir/munge/munged.seed" --force
    cat > "$dir/slurm.conf" <<CONF
ClusterName=managedclip-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF" -i
    slurmd -f "$SLURM_CONF"
    # Ready when the node takes jobs (idle), usually within a few seconds.
    for _ in $(seq 150); do
      state="$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)"
      case "$state" in idle*|mix*|alloc*) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;; esac
      sleep 0.2
    done
    echo "$0: the node did not come up (state '${state:-none}'); see $dir/log/" >&2
    exit 1
    ;;
  stop)
    stop_pid "$dir/slurmd.pid"
    stop_pid "$dir/slurmctld.pid"
    stop_pid "$dir/munge/munged.pid"
    ;;
  status)
    export SLURM_CONF="$dir/slurm.conf"
    sinfo -N
    ;;
  *) usage ;;
esac
