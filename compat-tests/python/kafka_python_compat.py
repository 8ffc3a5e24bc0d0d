"""kafka-python driver for StreamHouse's compatibility tests.

Same protocol as confluent_compat.py (JSON lines on stdin and stdout). Usage:

  produce  BOOTSTRAP TOPIC CODEC             enable_idempotence, acks=all
  consume  BOOTSTRAP TOPIC PARTITIONS N [P:OFFSET]   assign + seek, no group
  offsets  BOOTSTRAP TOPIC PARTITIONS TS     beginning/end offsets, offsets_for_times
  admin    BOOTSTRAP TOPIC PARTITIONS        create, list, describe, delete
  group    BOOTSTRAP TOPIC N GROUP           subscribe (consumer group), commit
"""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

DEADLINE_S = 60


def emit(obj):
    print(json.dumps(obj), flush=True)


def produce(bootstrap, topic, codec):
    p = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                      compression_type=None if codec == "none" else codec, linger_ms=5)
    futures = []
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        futures.append(p.send(topic, key=r["k"].encode(), value=r["v"].encode(), partition=r["p"],
                              headers=[(h["k"], h["v"].encode()) for h in r["h"]], timestamp_ms=r["ts"]))
    p.flush(DEADLINE_S)
    for f in futures:
        md = f.get(DEADLINE_S)
        emit({"op": "ack", "p": md.partition, "o": md.offset})
    p.close()


def record(m):
    return {"p": m.partition, "o": m.offset, "k": (m.key or b"").decode(), "v": (m.value or b"").decode(),
            "h": [{"k": k, "v": (v or b"").decode()} for k, v in (m.headers or [])], "ts": m.timestamp}


def poll_until(c, n):
    got, end = 0, time.time() + DEADLINE_S
    while got < n and time.time() < end:
        for _, msgs in c.poll(timeout_ms=500).items():
            for m in msgs:
                emit(record(m))
                got += 1
    return got


def consume(bootstrap, topic, partitions, n, seek=None):
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=200)
    if seek is None:
        tps = [TopicPartition(topic, i) for i in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
    else:
        p, o = (int(x) for x in seek.split(":"))
        tp = TopicPartition(topic, p)
        c.assign([tp])
        c.seek(tp, o)
    emit({"op": "consumed", "n": poll_until(c, n)})
    c.close()


def offsets(bootstrap, topic, partitions, ts):
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tps = [TopicPartition(topic, i) for i in range(partitions)]
    begin, end = c.beginning_offsets(tps), c.end_offsets(tps)
    by_ts = c.offsets_for_times({tp: ts for tp in tps})
    for tp in tps:
        ot = by_ts.get(tp)
        emit({"op": "offsets", "p": tp.partition, "earliest": begin[tp], "latest": end[tp],
              "by_ts": ot.offset if ot else -1})
    c.close()


def admin(bootstrap, topic, partitions):
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    emit({"op": "created"})
    emit({"op": "listed", "found": topic in a.list_topics()})
    d = a.describe_topics([topic])[0]
    emit({"op": "described", "partitions": len(d["partitions"]), "error": d["error_code"]})
    a.delete_topics([topic])
    emit({"op": "deleted"})
    end, found = time.time() + DEADLINE_S, True
    while found and time.time() < end:
        found = topic in a.list_topics()
        if found:
            time.sleep(0.1)
    emit({"op": "listed_after_delete", "found": found})
    a.close()


def group(bootstrap, topic, n, group_id):
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=200)
    got = poll_until(c, n)
    c.commit()
    total = sum(c.committed(tp) or 0 for tp in c.assignment())
    emit({"op": "consumed", "n": got, "committed_total": total})
    c.close()


def main(a):
    if a[0] == "produce":
        produce(a[1], a[2], a[3])
    elif a[0] == "consume":
        consume(a[1], a[2], int(a[3]), int(a[4]), a[5] if len(a) > 5 else None)
    elif a[0] == "offsets":
        offsets(a[1], a[2], int(a[3]), int(a[4]))
    elif a[0] == "admin":
        admin(a[1], a[2], int(a[3]))
    elif a[0] == "group":
        group(a[1], a[2], int(a[3]), a[4])
    else:
        raise SystemExit(f"unknown mode {a[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
