#!/usr/bin/env bash
# A local multi-node Apache Cassandra cluster from the same Maven jars as cassandra.sh: N nodes
# (default 3) on their own loopback addresses 127.0.0.2, 127.0.0.3, ... (CQL 9042 and storage 7000
# on each; JMX on 127.0.0.1:7201, 7202, ...), so it runs beside the single node of cassandra.sh
# (127.0.0.1:9042/7000/7199). A second cluster beside it: EC_CLUSTER_FIRST (node 1's last octet),
# EC_CLUSTER_JMX_BASE, EC_CLUSTER_DIR and EC_CLUSTER_NAME of its own (bench/lib/cassandra-cluster.mjs
# runs one on 127.0.0.5-7). The first node is the seed. Each node has its own directory (conf, data,
# logs, pid file) under $CACHE/cluster/nodeN and is one JVM that can be killed alone.
#
# Usage: scripts/cassandra/cluster.sh {start|stop|status|wipe}
#        scripts/cassandra/cluster.sh {start-node|stop-node|kill-node|pid} N
#        scripts/cassandra/cluster.sh nodetool [N] ARGS...   (nodetool against node N, default 1)
# See scripts/cassandra/README.md.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_SH="$SCRIPT_DIR/cassandra.sh"
CACHE="${EC_CASSANDRA_HOME:-${HOME}/.cache/ec-server/cassandra}"
mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd -P)"
NODES="${EC_CLUSTER_NODES:-3}"
PREFIX="${EC_CLUSTER_PREFIX:-127.0.0.}" # node N listens on ${PREFIX}$((N + FIRST - 1))
FIRST="${EC_CLUSTER_FIRST:-2}"          # the last octet of node 1's address
[[ "$FIRST" =~ ^[0-9]+$ ]] || { echo "EC_CLUSTER_FIRST must be a number (got '$FIRST')" >&2; exit 2; }
JMX_BASE="${EC_CLUSTER_JMX_BASE:-7200}" # node N: JMX on 127.0.0.1:$((JMX_BASE + N))
HEAP="${EC_CLUSTER_HEAP:-512M}"
WAIT_SECS="${EC_CLUSTER_WAIT:-300}"
# A second cluster beside the first needs its own addresses (EC_CLUSTER_FIRST), JMX ports and directory.
DIR="${EC_CLUSTER_DIR:-$CACHE/cluster}"
CLUSTER_NAME="${EC_CLUSTER_NAME:-ec-server-cluster}"

log() { printf '[cassandra-cluster] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

addr() { echo "${PREFIX}$(($1 + FIRST - 1))"; }
jmx() { echo "$((JMX_BASE + $1))"; }
check_n() { [[ "${1:-}" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= NODES)) || die "node must be 1..$NODES (got '${1:-}')"; }

# Runs cassandra.sh for node $1 with that node's address, ports, directory and cluster settings.
node() {
  local n=$1
  shift
  # auto_bootstrap false: a fresh local cluster has no data to stream, and its nodes may then join
  # together; a short ring delay because gossip on loopback settles in well under a second.
  EC_CASSANDRA_NODE_DIR="$DIR/node$n" \
    EC_CASSANDRA_ADDRESS="$(addr "$n")" \
    EC_CASSANDRA_SEEDS="$(addr 1):7000" \
    EC_CASSANDRA_PORT=9042 \
    EC_CASSANDRA_STORAGE_PORT=7000 \
    EC_CASSANDRA_JMX_PORT="$(jmx "$n")" \
    EC_CASSANDRA_CLUSTER_NAME="$CLUSTER_NAME" \
    EC_CASSANDRA_HEAP="$HEAP" \
    EC_CASSANDRA_MEMTABLE="${EC_CLUSTER_MEMTABLE:-96MiB}" \
    EC_CASSANDRA_CONCURRENT_WRITES="${EC_CLUSTER_CONCURRENT_WRITES:-32}" \
    EC_CASSANDRA_HINTED_HANDOFF=true \
    EC_CASSANDRA_AUTO_BOOTSTRAP=false \
    EC_CASSANDRA_JVM_OPTS="-Dcassandra.ring_delay_ms=3000 -Dcassandra.consistent.rangemovement=false" \
    EC_CASSANDRA_WAIT="$WAIT_SECS" \
    bash "$NODE_SH" "$@"
}

pid_of() { tr -dc '0-9' <"$DIR/node$1/cassandra.pid" 2>/dev/null || true; }

# nodetool from the fetched jars, over node $1's local JMX port.
nodetool() {
  local n=$1
  shift
  local java
  java="${EC_CASSANDRA_JAVA:-/usr/lib/jvm/java-17-openjdk-amd64/bin/java}"
  [[ -x "$java" ]] || java="$(command -v java)"
  # the JDK 17 opens Cassandra's tools need (as in its bin/nodetool), and a history file in the node's dir
  "$java" -Xmx128m -Duser.home="$DIR/node$n" -Dcassandra.storagedir="$DIR/node$n/data" \
    -Dlogback.configurationFile="file://$DIR/node$n/conf/logback.xml" --add-exports java.base/jdk.internal.ref=ALL-UNNAMED \
    --add-exports java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/sun.nio.ch=ALL-UNNAMED \
    --add-opens java.base/java.nio=ALL-UNNAMED --add-exports java.base/jdk.internal.misc=ALL-UNNAMED \
    -cp "$CACHE/lib/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$(jmx "$n")" "$@"
}

# Number of nodes that nodetool status on node $1 shows Up and Normal.
up_normal() { nodetool "$1" status 2>/dev/null | grep -c '^UN ' || true; }

wait_all_un() {
  local t0=$SECONDS n
  while ((SECONDS - t0 < WAIT_SECS)); do
    local ok=1
    for n in $(seq "$NODES"); do
      [[ "$(up_normal "$n")" == "$NODES" ]] || { ok=0; break; }
    done
    if ((ok)); then
      log "all $NODES nodes UN (seen from every node) after $((SECONDS - t0))s"
      return 0
    fi
    sleep 2
  done
  nodetool 1 status >&2 || true
  die "timed out after ${WAIT_SECS}s waiting for $NODES nodes UN"
}

cmd_start() {
  local t0=$SECONDS n
  bash "$NODE_SH" fetch
  # The seed first: the others join through it, and then start together.
  node 1 start
  local -a pids=()
  for n in $(seq 2 "$NODES"); do
    node "$n" start &
    pids+=($!)
  done
  local failed=0
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || die "a node failed to start (logs: $DIR/node*/cassandra.log)"
  wait_all_un
  log "cluster of $NODES up in $((SECONDS - t0))s: CQL on $(for n in $(seq "$NODES"); do printf '%s:9042 ' "$(addr "$n")"; done)"
}

cmd_stop() {
  local n
  local -a pids=()
  for n in $(seq "$NODES"); do
    node "$n" stop &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || true; done
}

cmd_status() {
  local n rc=0
  for n in $(seq "$NODES"); do
    printf 'node%s %s: ' "$n" "$(addr "$n")"
    node "$n" status || rc=1
  done
  if ((rc == 0)); then nodetool 1 status 2>/dev/null | grep -E '^(UN|DN|UJ|DJ|UL|UM|--|Datacenter)' || true; fi
  return $rc
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  wipe)
    cmd_stop
    rm -rf "$DIR"
    log "deleted $DIR"
    ;;
  start-node)
    check_n "${2:-}"
    node "$2" start
    ;;
  stop-node)
    check_n "${2:-}"
    node "$2" stop
    ;;
  kill-node) # SIGKILL: no drain, no flush -- a crash
    check_n "${2:-}"
    pid="$(pid_of "$2")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || die "node $2 is not running"
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    log "node $2 ($(addr "$2"), pid $pid) killed"
    ;;
  pid)
    check_n "${2:-}"
    pid_of "$2"
    ;;
  nodetool)
    shift
    n=1
    if [[ "${1:-}" =~ ^[0-9]+$ ]]; then
      check_n "$1"
      n=$1
      shift
    fi
    nodetool "$n" "$@"
    ;;
  *)
    echo "usage: $0 {start|stop|status|wipe} | {start-node|stop-node|kill-node|pid} N | nodetool [N] ARGS..." >&2
    exit 2
    ;;
esac
