#!/usr/bin/env bash
# The full test tier, as CI runs it (`npm run test:full`), on a fresh Debian machine (run as root,
# or with sudo for apt):
#   1. installs the real SIP peer (sipp, Debian package sip-tester), promtool (Debian package prometheus:
#      it checks /metrics), systemd-analyze and logrotate (deploy/) and chromium (Debian package chromium:
#      the dashboard's browser test) when missing;
#   2. creates the independent Cassandra reader (Python cassandra-driver in a venv, $EC_PYVENV,
#      default ~/.cache/ec-server/pyvenv) when missing: the read-back cross-check uses it;
#   3. starts a local three-node Cassandra cluster (scripts/cassandra/cluster.sh: 127.0.0.2-4, RF 3),
#      runs the cluster suites (test/full/cassandra-cluster-*.test.ts: a node and a receiver killed
#      mid-stream, two receivers' registries; test/integration/sync-coordination.test.ts: two
#      receivers' sync leases), required, then stops the cluster (when it started it), so that its
#      three JVMs do not take CPU from the timing-sensitive suites after it;
#   4. starts a real single-node Apache Cassandra from Maven Central jars (scripts/cassandra/);
#   5. runs every other suite: test/unit, test/integration and test/full (sipp, Cassandra, the server
#      as a process, outages), the Cassandra ones required (they fail instead of skipping), and the
#      slow tests (EC_SLOW_TESTS=1: the packed tarball installed without dev dependencies);
#   6. stops Cassandra (when it started it).
# `npm test` is the fast tier: unit and in-process integration, no sipp, no Cassandra, under a minute.
# Assumes `npm install` (or `npm ci`) has run. EC_SKIP_CASSANDRA=1 runs without the node and the
# cluster, EC_SKIP_CLUSTER=1 without the cluster (those suites then report loudly that they were NOT run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sipp >/dev/null 2>&1; then
  echo "[test-all] installing sipp (Debian package sip-tester)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq sip-tester >/dev/null
fi
sipp -v 2>/dev/null | head -1 || true

if ! command -v promtool >/dev/null 2>&1; then
  echo "[test-all] installing promtool (Debian package prometheus)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if [ ! -x /usr/sbin/kamailio ]; then
  # The SIP front test (deploy/kamailio: dispatcher, sl, tm, maxfwd, textops, all in Debian's kamailio).
  echo "[test-all] installing kamailio"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kamailio >/dev/null
fi

# The /metrics test fails instead of skipping when promtool is missing.
export EC_REQUIRE_PROMTOOL=1

if ! command -v systemd-analyze >/dev/null 2>&1 || ! command -v logrotate >/dev/null 2>&1; then
  # deploy/: `systemd-analyze verify` of the unit (Debian package systemd), the nohup recipe's logrotate.
  echo "[test-all] installing systemd-analyze and logrotate"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends systemd logrotate >/dev/null
fi
# The deploy/ tests fail instead of skipping when either is missing.
export EC_REQUIRE_DEPLOY_TOOLS=1

if [ ! -x /usr/bin/chromium ]; then
  echo "[test-all] installing chromium (Debian package chromium: the dashboard's browser test)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version 2>/dev/null || true
# The dashboard test (playwright-core driving /usr/bin/chromium, no browser download) fails instead of skipping
# when chromium is missing.
export EC_REQUIRE_CHROMIUM=1

if [ "${EC_SKIP_CASSANDRA:-0}" != "1" ]; then
  PYVENV="${EC_PYVENV:-$HOME/.cache/ec-server/pyvenv}"
  if ! "$PYVENV/bin/python" -c 'import cassandra' >/dev/null 2>&1; then
    echo "[test-all] creating the Python venv $PYVENV with cassandra-driver (the independent reader)"
    if ! python3 -m venv "$PYVENV" >/dev/null 2>&1; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$PYVENV"
    fi
    "$PYVENV/bin/pip" install -q 'cassandra-driver>=3.29,<4'
  fi
  export EC_PYVENV="$PYVENV"
fi

# Slow tests too (package-install.test.ts: npm pack, install with --omit=dev).
export EC_SLOW_TESTS=1
npm run -s build
CLUSTER_SUITES=('dist/test/full/cassandra-cluster-*.test.js' 'dist/test/integration/sync-coordination.test.js')
IGNORE=() # the suites already run with the cluster (mocha expands the globs)

if [ "${EC_SKIP_CASSANDRA:-0}" != "1" ] && [ "${EC_SKIP_CLUSTER:-0}" != "1" ]; then
  t0=$SECONDS
  cluster_started=0
  if bash scripts/cassandra/cluster.sh status >/dev/null 2>&1; then
    echo "[test-all] a Cassandra cluster is already running: using it, leaving it running"
  else
    cluster_started=1
    trap 'bash scripts/cassandra/cluster.sh stop || true' EXIT
  fi
  bash scripts/cassandra/cluster.sh start
  EC_REQUIRE_CLUSTER=1 npx mocha "${CLUSTER_SUITES[@]}"
  if [ "$cluster_started" = 1 ]; then
    bash scripts/cassandra/cluster.sh stop
    trap - EXIT
  fi
  echo "[test-all] cluster suites (start, tests, stop) took $((SECONDS - t0)) s"
  for suite in "${CLUSTER_SUITES[@]}"; do IGNORE+=(--ignore "$suite"); done
fi

if [ "${EC_SKIP_CASSANDRA:-0}" != "1" ]; then
  # Stop the node at the end only when this run started it (on a shared machine another run may use it).
  if bash scripts/cassandra/cassandra.sh status >/dev/null 2>&1; then
    echo "[test-all] a Cassandra node is already running: using it, leaving it running"
    bash scripts/cassandra/cassandra.sh start
  else
    bash scripts/cassandra/cassandra.sh start
    trap 'bash scripts/cassandra/cassandra.sh stop || true' EXIT
  fi
  export EC_REQUIRE_CASSANDRA=1
fi

# The cluster suites ran above: not again (skipped, they say loudly here that they were NOT run).
# --exit: on 2026-12-03 a run whose 515 tests all passed then waited on one Cassandra driver connection
# left open (not found in any file run alone); CI must end with the tests' verdict, not its time limit.
npx mocha --exit 'dist/test/unit/**/*.test.js' 'dist/test/integration/**/*.test.js' 'dist/test/full/**/*.test.js' \
  "${IGNORE[@]}"
