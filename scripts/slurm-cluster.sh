#!/usr/bin/env bash
# A throwaway Slurm cluster for jobpulse's end-to-end tests (Debian's slurm-wlm 22.05), one node or several.
#
#   scripts/slurm-cluster.sh start [--no-accounting] [--nodes N]
#                                                      bring it up (munge, [mariadb, slurmdbd,] slurmctld, slurmd)
#   scripts/slurm-cluster.sh stop                      stop exactly the processes `start` started
#   scripts/slurm-cluster.sh status                    what runs, and the node's state
#
# Everything lives in $JOBPULSE_SLURM_DIR (default /tmp/jobpulse-slurm): its own munge key and
# socket, its own MariaDB (skip-grant-tables, loopback only), free ports picked at start, and every
# daemon bound to loopback (CommunicationParameters=NoInAddrAny,NoCtldInAddrAny). Prolog/Epilog are
# this repository's packaging/slurm scripts, which call this checkout's jobpulse-agent; the test
# points them at its agent through $JOBPULSE_SLURM_DIR/etc/jobpulse-hook.env.
# Needs root, cgroup v1 at /sys/fs/cgroup and the packages slurm-wlm munge (slurmdbd mariadb-server for
# sacct). $JOBPULSE_SLURM_FIRST_JOB_ID sets the first job id (tests keep theirs apart from other
# runs' cgroups). Source $JOBPULSE_SLURM_DIR/cluster.env to use the cluster's sbatch/squeue/sacct.
#
# --nodes N (N > 1): N compute nodes on this one host, one slurmd each (`slurmd -N <name>`; Debian builds
# Slurm with multiple-slurmd support): NodeName=<prefix>[1-N], each on its own port, spool, log and pid
# file (%n), each with its own cgroup v1 root /sys/fs/cgroup/<ctrl>/slurm_<name>. The prefix is
# $JOBPULSE_SLURM_NODE_PREFIX (default "n"), so that two clusters on one host keep their cgroups apart.
# Every node declares the host's real CPUs (they share them) and 1/N of its memory. cluster.env then
# lists the nodes in JOBPULSE_SLURM_NODES (comma-separated); the hooks reach each node's agent through
# jobpulse-hook.env, which may use ${SLURMD_NODENAME} (the tests give each node its own agent socket).
# See docs/slurm-test-cluster.md.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
DIR=${JOBPULSE_SLURM_DIR:-/tmp/jobpulse-slurm}
NODE=$(hostname -s)
CLUSTER=jobpulse-test
PREFIX=${JOBPULSE_SLURM_NODE_PREFIX:-n}
PIDS=$DIR/run/pids

die() { echo "slurm-cluster: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

free_ports() {  # free_ports N: the first of N consecutive free loopback ports (Port=[a-b] needs a range)
  python3 - "$1" <<'PY'
import random, socket, sys
count = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 60000 - count)
    sockets = []
    try:
        for port in range(base, base + count):
            s = socket.socket()
            sockets.append(s)
            s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for s in sockets:
            s.close()
    print(base)
    break
else:
    sys.exit("no free port range")
PY
}

node_names() {  # the cluster's NodeNames, one a line (read back from run/nodes once started)
  cat "$DIR/run/nodes"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${limit}s waiting for $what (logs in $DIR/log)"
    sleep 0.2
  done
}

started() {  # remember a PID we own, with its name
  echo "$1 $2" >>"$PIDS"
}

check_host() {
  [ "$(id -u)" = 0 ] || die "needs root (slurmd runs jobs as their users)"
  for tool in munged slurmctld slurmd sbatch squeue; do
    command -v "$tool" >/dev/null || die "$tool not installed (apt-get install slurm-wlm munge)"
  done
  [ -d /sys/fs/cgroup/cpuacct ] && [ -d /sys/fs/cgroup/memory ] || die "no cgroup v1 cpuacct/memory hierarchy at /sys/fs/cgroup"
  local addr
  addr=$(getent hosts "$NODE" | awk '{print $1; exit}')
  case "$addr" in
    127.*|::1) ;;
    *) die "host name $NODE resolves to '$addr', not loopback: the cluster would not stay on loopback" ;;
  esac
}

write_config() {
  local accounting=$1 nodes=$2 ctld_port slurmd_port dbd_port db_port node_line spool_d partition_nodes names
  ctld_port=$(free_port); slurmd_port=$(free_port); dbd_port=$(free_port); db_port=$(free_port)
  node_line=$(slurmd -C | head -1)
  mkdir -p "$DIR"/{etc,run,log,spool/ctld,spool/d,munge,db}
  if [ "$nodes" -gt 1 ]; then
    # NodeName=vm CPUs=2 ... RealMemory=R  ->  NodeName=n[1-N] NodeHostname=vm Port=[p-p+N-1] CPUs=2 ... RealMemory=R/N
    local base memory
    base=$(free_ports "$nodes")
    memory=$(printf '%s\n' "$node_line" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    node_line=$(printf '%s\n' "$node_line" | sed -e "s/^NodeName=[^ ]*/NodeName=$PREFIX[1-$nodes] NodeHostname=$NODE Port=[$base-$((base + nodes - 1))]/" \
      -e "s/RealMemory=[0-9]*/RealMemory=$((memory / nodes))/")
    partition_nodes="$PREFIX[1-$nodes]"
    spool_d=$DIR/spool/d/%n
    names=$(seq -f "$PREFIX%g" 1 "$nodes")
  else
    partition_nodes=$NODE
    spool_d=$DIR/spool/d
    names=$NODE
  fi
  printf '%s\n' "$names" >"$DIR/run/nodes"
  chmod 0755 "$DIR" "$DIR"/munge
  cat >"$DIR/etc/slurm.conf" <<EOF
# Generated by scripts/slurm-cluster.sh
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$spool_d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
MailProg=/bin/true
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
ProctrackType=proctrack/cgroup
TaskPlugin=task/affinity,task/cgroup
JobAcctGatherType=jobacct_gather/cgroup
JobAcctGatherFrequency=task=5
Prolog=$REPO/packaging/slurm/prolog.d/50-jobpulse.sh
Epilog=$REPO/packaging/slurm/epilog.d/50-jobpulse.sh
PrologFlags=Contain
KillWait=5
FirstJobId=${JOBPULSE_SLURM_FIRST_JOB_ID:-1}
JobCompType=jobcomp/none
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=compute Nodes=$partition_nodes Default=YES MaxTime=INFINITE State=UP
EOF
  if [ "$accounting" = yes ]; then
    cat >>"$DIR/etc/slurm.conf" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStoragePort=$dbd_port
AccountingStoragePass=$DIR/munge/munge.socket
EOF
    cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=root
StorageLoc=slurm_acct_db
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
DebugLevel=info
EOF
    chmod 0600 "$DIR/etc/slurmdbd.conf"
    echo "$db_port" >"$DIR/run/db_port"
  fi
  cat >"$DIR/etc/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=yes
ConstrainRAMSpace=yes
EOF
  # Read by the packaged hook scripts (next to slurm.conf); the tests rewrite it to point at their agent.
  cat >"$DIR/etc/jobpulse-hook.env" <<EOF
JOBPULSE_AGENT=$REPO/.venv/bin/jobpulse-agent
JOBPULSE_STATE_DIR=${JOBPULSE_HOOK_STATE_DIR:-$DIR/agent}
JOBPULSE_SOCKET=${JOBPULSE_HOOK_SOCKET:-$DIR/agent/agent.sock}
JOBPULSE_AGENT_CONFIG=$DIR/etc/jobpulse-agent.toml
EOF
  cat >"$DIR/cluster.env" <<EOF
export SLURM_CONF=$DIR/etc/slurm.conf
export JOBPULSE_SLURM_NODE=$(head -1 "$DIR/run/nodes")
export JOBPULSE_SLURM_NODES=$(echo $names | tr " " ,)
export JOBPULSE_SLURM_CLUSTER=$CLUSTER
export JOBPULSE_SLURM_ACCOUNTING=$accounting
EOF
}

start_munge() {
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
  chmod 0400 "$DIR/munge/munge.key"
  munged -F --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
    >>"$DIR/log/munged.out" 2>&1 &
  started $! munged
  wait_for 10 munged munge -S "$DIR/munge/munge.socket" -n
}

start_accounting() {
  local db_port
  db_port=$(cat "$DIR/run/db_port")
  command -v mariadbd >/dev/null && command -v slurmdbd >/dev/null || die "mariadb-server/slurmdbd not installed"
  mariadb-install-db --user=root --datadir="$DIR/db" --skip-test-db --auth-root-authentication-method=normal \
    >>"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $DIR/log/mariadb-install.log)"
  # Loopback only, throwaway data, no passwords: --skip-grant-tables is fine here and nowhere else.
  mariadbd --user=root --datadir="$DIR/db" --socket="$DIR/run/mysqld.sock" --port="$db_port" \
    --bind-address=127.0.0.1 --pid-file="$DIR/run/mysqld.pid" --skip-grant-tables --skip-name-resolve \
    --log-error="$DIR/log/mariadb.log" >>"$DIR/log/mariadb.out" 2>&1 &
  started $! mariadbd
  wait_for 30 MariaDB mariadb --socket="$DIR/run/mysqld.sock" -e 'SELECT 1'
  SLURM_CONF=$DIR/etc/slurm.conf slurmdbd -D >>"$DIR/log/slurmdbd.out" 2>&1 &
  started $! slurmdbd
  wait_for 30 slurmdbd env SLURM_CONF="$DIR/etc/slurm.conf" sacctmgr -n list cluster
  SLURM_CONF=$DIR/etc/slurm.conf sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

cmd_start() {
  local accounting=yes nodes=1 name
  while [ $# -gt 0 ]; do
    case "$1" in
      --no-accounting) accounting=no ;;
      --nodes) shift; nodes=${1:-}; case "$nodes" in ''|*[!0-9]*|0) die "--nodes needs a number >= 1" ;; esac ;;
      *) die "unknown option $1" ;;
    esac
    shift
  done
  [ -s "$PIDS" ] && die "already started (pids in $PIDS); run: $0 stop"
  check_host
  if [ "$accounting" = yes ] && ! command -v slurmdbd >/dev/null; then
    echo "slurm-cluster: slurmdbd not installed, starting without accounting (no sacct)" >&2
    accounting=no
  fi
  rm -rf "$DIR"
  mkdir -p "$DIR/run"
  : >"$PIDS"
  write_config "$accounting" "$nodes"
  export SLURM_CONF=$DIR/etc/slurm.conf
  start_munge
  [ "$accounting" = yes ] && start_accounting
  slurmctld -D -i >>"$DIR/log/slurmctld.out" 2>&1 &
  started $! slurmctld
  wait_for 30 slurmctld scontrol ping
  for name in $(node_names); do
    [ "$nodes" -gt 1 ] && mkdir -p "$DIR/spool/d/$name"
    slurmd -D -N "$name" >>"$DIR/log/slurmd-$name.out" 2>&1 &
    started $! "slurmd-$name"
  done
  for name in $(node_names); do
    wait_for 30 "node $name idle" sh -c "sinfo -h -n '$name' -o %T | grep -qx idle"
  done
  echo "slurm-cluster: up in $DIR (accounting: $accounting, nodes: $(echo $(node_names))); source $DIR/cluster.env"
}

cmd_stop() {
  [ -f "$PIDS" ] || { echo "slurm-cluster: nothing started from $DIR"; return 0; }
  # Cancel what still runs, so job cgroups and their processes go away with the cluster.
  if [ -f "$DIR/etc/slurm.conf" ]; then
    SLURM_CONF=$DIR/etc/slurm.conf timeout 10 scancel --full --quiet --partition=compute 2>/dev/null || true
  fi
  # Newest first: slurmd, slurmctld, slurmdbd, mariadbd, munged.
  tac "$PIDS" | while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "slurm-cluster: $name ($pid) ignored SIGTERM, killing"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  done
  # Slurm leaves each node's empty cgroup root behind; remove those of a multi-node cluster's own nodes
  # (named by its prefix), so that runs do not pile them up. A single node's slurm_<host> is shared.
  if [ -f "$DIR/run/nodes" ] && [ "$(wc -l <"$DIR/run/nodes")" -gt 1 ]; then
    for name in $(node_names); do
      for ctrl in /sys/fs/cgroup/*/; do
        [ -d "${ctrl}slurm_$name" ] && { rmdir "${ctrl}slurm_$name/"uid_* "${ctrl}slurm_$name" 2>/dev/null || true; }
      done
    done
  fi
  rm -f "$PIDS"
  echo "slurm-cluster: stopped"
}

cmd_status() {
  [ -f "$PIDS" ] || { echo "slurm-cluster: not started"; return 1; }
  local rc=0
  while read -r pid name; do
    if kill -0 "$pid" 2>/dev/null; then echo "$name $pid running"; else echo "$name $pid gone"; rc=1; fi
  done <"$PIDS"
  SLURM_CONF=$DIR/etc/slurm.conf sinfo -h -o '%N %T' 2>/dev/null || rc=1
  return $rc
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start [--no-accounting] [--nodes N] | stop | status" >&2; exit 2 ;;
esac
