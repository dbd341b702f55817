#!/usr/bin/env bash
# The full test run, as CI does it, on a fresh Debian machine (run as root, or with sudo for apt):
#   1. installs the real SIP peer (sipp, Debian package sip-tester) when missing;
#   2. starts a real single-node Apache Cassandra from Maven Central jars (scripts/cassandra/);
#   3. runs `npm test` with the Cassandra suites required (they fail instead of skipping) and the
#      slow tests (EC_SLOW_TESTS=1: the packed tarball installed without dev dependencies);
#   4. stops Cassandra.
# Assumes `npm install` (or `npm ci`) has run. EC_SKIP_CASSANDRA=1 runs without the node
# (the Cassandra suites then report loudly that they were NOT run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v sipp >/dev/null 2>&1; then
  echo "[test-all] installing sipp (Debian package sip-tester)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq sip-tester >/dev/null
fi
sipp -v 2>/dev/null | head -1 || true

if [ "${EC_SKIP_CASSANDRA:-0}" != "1" ]; then
  bash scripts/cassandra/cassandra.sh start
  trap 'bash scripts/cassandra/cassandra.sh stop || true' EXIT
  export EC_REQUIRE_CASSANDRA=1
fi

# Slow tests too (test/integration/package-install.test.ts: npm pack, install with --omit=dev).
export EC_SLOW_TESTS=1
npm test
