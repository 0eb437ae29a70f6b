#!/usr/bin/env bash
# A throwaway one-node Slurm on this machine: `make test-slurm` runs the cluster tests on it, and
# a user can try `make slurm` on a workstation with it (README "On a cluster").
#
#   tests/slurm/cluster.sh install       # as root: Debian's slurmctld, slurmd and slurm-client
#   tests/slurm/cluster.sh start DIR     # daemons up, node idle; all state under DIR
#   export SLURM_CONF=DIR/slurm.conf     # then sbatch, srun, squeue, scontrol ... use it
#   tests/slurm/cluster.sh stop DIR      # cancels the jobs, stops the daemons
#
# The node declares CPUS (default 8) CPUs and GPUS (default 2) fake GPUs, more than the machine
# may have, so --cpus-per-task and --gres=gpu:N requests schedule; jobs must still run on CPU.
# NODES=2 (or more) starts that many nodes, each slurmd in a network and UTS namespace of its
# own (its own hostname and address, 10.213.N.1i), joined to the controller by veth pairs on a
# bridge, with the names in /etc/hosts; `stop` removes all of it. They share this machine's
# file systems, as cluster nodes share theirs.
# Exit status 3: it cannot run here (not root, no packages); the tests skip with that reason.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
cant() { echo "cluster.sh: $*" >&2; exit 3; }

case "$cmd" in
install)
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && exit 0
    [ "$(id -u)" = 0 ] || cant "installing Slurm needs root (apt-get)"
    command -v apt-get >/dev/null || cant "no apt-get: install slurmctld, slurmd and slurm-client yourself"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends slurmctld slurmd slurm-client; } >/dev/null 2>&1 \
        || cant "apt-get could not install slurmctld slurmd slurm-client (no package registry?)"
    ;;
start)
    [ -n "$dir" ] || { echo "usage: $0 start DIR" >&2; exit 2; }
    [ "$(id -u)" = 0 ] || cant "slurmd must run as root"
    for b in slurmctld slurmd sbatch scontrol; do command -v "$b" >/dev/null || cant "$b not installed (run: $0 install)"; done
    mkdir -p "$dir"/{state,spool,log,dev}
    dir=$(cd "$dir" && pwd)
    host=$(hostname -s)
    cpus=${CPUS:-8}
    gpus=${GPUS:-2}
    gres_file="$dir/gres.conf"
    : >"$gres_file"
    for ((i = 0; i < gpus; i++)); do  # gres needs character devices; /dev/null's numbers do
        [ -e "$dir/dev/nvidia$i" ] || mknod "$dir/dev/nvidia$i" c 1 3
        echo "NodeName=$host Name=gpu File=$dir/dev/nvidia$i" >>"$gres_file"
    done
    port=$((20000 + RANDOM % 20000))
    nodes=${NODES:-1}
    ctl=$host
    node_lines="NodeName=$host CPUs=$cpus Gres=gpu:$gpus State=UNKNOWN"
    names=()
    if ((nodes > 1)); then
        for b in ip unshare; do command -v "$b" >/dev/null || cant "NODES=$nodes needs $b"; done
        net=$((port % 250 + 1))
        echo "$net $nodes" >"$dir/network"
        ip link add "lg${net}b" type bridge 2>/dev/null || cant "cannot make a bridge (ip link add type bridge)"
        ip addr add "10.213.$net.1/24" dev "lg${net}b"
        ip link set "lg${net}b" up
        ctl="$host(10.213.$net.1)"
        node_lines=""
        : >"$gres_file"
        for ((i = 1; i <= nodes; i++)); do
            name="lg${net}n$i"
            names+=("$name")
            ip netns add "$name"
            ip link add "lg${net}v$i" type veth peer name "lg${net}p$i"
            ip link set "lg${net}p$i" netns "$name"
            ip link set "lg${net}v$i" master "lg${net}b"
            ip link set "lg${net}v$i" up
            ip netns exec "$name" ip addr add "10.213.$net.1$i/24" dev "lg${net}p$i"
            ip netns exec "$name" ip link set "lg${net}p$i" up
            ip netns exec "$name" ip link set lo up
            echo "10.213.$net.1$i $name # lightning-gans cluster $net" >>/etc/hosts
            node_lines+="NodeName=$name NodeAddr=10.213.$net.1$i CPUs=$cpus Gres=gpu:$gpus State=UNKNOWN"$'\n'
            for ((g = 0; g < gpus; g++)); do
                echo "NodeName=$name Name=gpu File=$dir/dev/nvidia$g" >>"$gres_file"
            done
        done
    fi
    cat >"$dir/slurm.conf" <<CONF
ClusterName=lgans
SlurmctldHost=$ctl
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=bf_interval=1,sched_interval=1
SlurmdParameters=config_overrides
JobRequeue=1
ReturnToService=2
KillWait=30
MpiDefault=none
GresTypes=gpu
$node_lines
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -i -f "$SLURM_CONF"
    if ((nodes > 1)); then
        for name in "${names[@]}"; do  # its own address and hostname, as a node has
            mkdir -p "$dir/spool/$name"
            # nsenter, not ip netns exec: that one mounts a /sys of its own, without cgroups
            nsenter --net="/var/run/netns/$name" unshare --uts \
                sh -c "hostname $name && exec slurmd -N $name -f $SLURM_CONF"
        done
    else
        mkdir -p "$dir/spool/$host"
        slurmd -f "$SLURM_CONF"
    fi
    for _ in $(seq 100); do
        states=$(sinfo -h -N -o %t 2>/dev/null | sort -u | tr '\n' ' ' || true)
        [ "$states" = "idle " ] && { echo "export SLURM_CONF=$SLURM_CONF"; exit 0; }
        sleep 0.2
    done
    tail -n 5 "$dir"/log/*.log >&2 || true
    "$0" stop "$dir" || true
    cant "the node did not become idle within 20 s (logs above)"
    ;;
stop)
    [ -n "$dir" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
    export SLURM_CONF="$dir/slurm.conf"
    scancel --full --quiet --user "$(id -un)" 2>/dev/null || true
    for _ in $(seq 50); do  # slurmstepd outlives slurmd: let the jobs end first
        [ -z "$(squeue -h 2>/dev/null)" ] && break
        sleep 0.2
    done
    for pid in "$dir"/slurmd-*.pid "$dir/slurmctld.pid"; do
        [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    for _ in $(seq 50); do
        alive=0
        for pid in "$dir"/slurmd-*.pid "$dir/slurmctld.pid"; do
            [ -f "$pid" ] && kill -0 "$(cat "$pid")" 2>/dev/null && alive=1
        done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    if [ -f "$dir/network" ]; then  # NODES > 1: the namespaces, links and names it made
        read -r net nodes <"$dir/network"
        for ((i = 1; i <= nodes; i++)); do
            ip netns del "lg${net}n$i" 2>/dev/null || true
            ip link del "lg${net}v$i" 2>/dev/null || true
        done
        ip link del "lg${net}b" 2>/dev/null || true
        sed -i "/# lightning-gans cluster $net\$/d" /etc/hosts
        rm -f "$dir/network"
    fi
    ;;
*)
    echo "usage: $0 install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
