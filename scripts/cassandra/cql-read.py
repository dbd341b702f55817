#!/usr/bin/env python3
"""Reads ec_consumption rows with the Python cassandra-driver, independently of ec-server's code.

Used by test/integration/cassandra-store.test.ts to check that what the Node.js store wrote is
plain, readable CQL data; handy by hand too:

  python cql-read.py --keyspace mykeyspace --device dev-1 --date 20160909 --hour 15 [--hour 16 ...]

Prints one JSON object: {"rows": [...], "table": {...}}. Rows come in partition order of the
--hour arguments, then clustering order; timestamps as ms since the epoch (UTC).
"""
import argparse
import calendar
import json
import sys

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import DCAwareRoundRobinPolicy

COLUMNS = [
    "device_id", "ec_date", "ec_hour", "ec_time", "start_us", "end_us", "ec_consumption_values",
    "values_count", "values_checksum", "batch_seq", "insert_time",
]


def ms(dt):
    if dt is None:
        return None
    # the driver returns naive UTC datetimes for timestamp columns
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="contact point(s), comma-separated")
    p.add_argument("--consistency", default="LOCAL_QUORUM", choices=["ONE", "LOCAL_QUORUM", "QUORUM", "ALL"])
    p.add_argument("--port", type=int, default=9042)
    p.add_argument("--local-dc", default="datacenter1")
    p.add_argument("--keyspace", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--date", required=True, help="YYYYMMDD (UTC)")
    p.add_argument("--hour", action="append", required=True, help="hh (UTC); repeat for several partitions")
    a = p.parse_args()

    profile = ExecutionProfile(
        load_balancing_policy=DCAwareRoundRobinPolicy(local_dc=a.local_dc),
        consistency_level=getattr(ConsistencyLevel, a.consistency),
        request_timeout=20,
    )
    cluster = Cluster(a.host.split(","), port=a.port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        session = cluster.connect()
        # Every read names its partition (device_id, ec_date, ec_hour): no ALLOW FILTERING.
        stmt = session.prepare(
            "SELECT {} FROM {}.ec_consumption WHERE device_id = ? AND ec_date = ? AND ec_hour = ?".format(
                ", ".join(COLUMNS), a.keyspace
            )
        )
        rows = []
        for hour in a.hour:
            for r in session.execute(stmt, (a.device, a.date, hour)):
                d = {c: getattr(r, c) for c in COLUMNS}
                d["insert_time"] = ms(d["insert_time"])
                rows.append(d)
        t = session.execute(
            "SELECT compaction, default_time_to_live FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
            (a.keyspace, "ec_consumption"),
        ).one()
        pk = session.execute(
            "SELECT column_name, kind, position FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
            (a.keyspace, "ec_consumption"),
        )
        keys = sorted((c.position, c.column_name) for c in pk if c.kind == "partition_key")
        table = {
            "compaction": dict(t.compaction) if t else None,
            "default_time_to_live": t.default_time_to_live if t else None,
            "partition_key": [name for _, name in keys],
        }
        json.dump({"rows": rows, "table": table}, sys.stdout)
        sys.stdout.write("\n")
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
