"""confluent-kafka (librdkafka) driver for StreamHouse's compatibility tests.

Run by ../clients/python_test.go with the venv setup.sh makes. Records come in
on stdin and go out on stdout as JSON lines {"p","o","k","v","h":[{"k","v"}],"ts"};
other results are events {"op": ...}. Usage:

  produce  BOOTSTRAP TOPIC CODEC             enable.idempotence=true, acks=all
  consume  BOOTSTRAP TOPIC PARTITIONS N [P:OFFSET]   assign, no group
  offsets  BOOTSTRAP TOPIC PARTITIONS TS     watermarks, offsets_for_times
  admin    BOOTSTRAP TOPIC PARTITIONS        create, list, delete
  group    BOOTSTRAP TOPIC N GROUP           subscribe (consumer group), commit
  drain    BOOTSTRAP TOPIC PARTITIONS ISOLATION
           assign from the beginning at isolation.level ISOLATION (read_committed or
           read_uncommitted) and read until every partition reports its end
           (enable.partition.eof: the last stable offset under read_committed)
  txn-etl  BOOTSTRAP IN OUT GROUP TXN_ID N
           consume-transform-produce, exactly once: a read_committed consumer in GROUP
           reads IN; each batch is copied to OUT (same partition, key, headers and
           timestamp, value prefixed "etl:") in a transaction of producer TXN_ID with
           the batch's offsets (send_offsets_to_transaction); every third transaction
           is aborted after its records were delivered, and the consumer rewinds to
           redo the batch. Stops once N input records are committed. Prints
           {"op":"txn","result","records","delivered"} per transaction.

Before the mode, "--config FILE" adds the librdkafka properties of the JSON
object in FILE (e.g. security.protocol, sasl.mechanisms) to every client's.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition, OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, NewTopic

DEADLINE_S = 60

# librdkafka properties from --config, added to every client's.
EXTRA = {}


def conf(cfg):
    return {**cfg, **EXTRA}


def emit(obj):
    print(json.dumps(obj), flush=True)


def produce(bootstrap, topic, codec):
    p = Producer(conf({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                       "compression.type": codec, "linger.ms": 5}))
    acks = []

    def on_delivery(err, msg):
        if err is not None:
            raise RuntimeError(f"delivery failed: {err}")
        acks.append({"op": "ack", "p": msg.partition(), "o": msg.offset()})

    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        p.produce(topic, key=r["k"].encode(), value=r["v"].encode(), partition=r["p"],
                  headers=[(h["k"], h["v"].encode()) for h in r["h"]], timestamp=r["ts"],
                  on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(DEADLINE_S)
    if left:
        raise RuntimeError(f"{left} records not delivered within {DEADLINE_S}s")
    for a in acks:
        emit(a)


def record(m):
    return {"p": m.partition(), "o": m.offset(), "k": (m.key() or b"").decode(),
            "v": (m.value() or b"").decode(),
            "h": [{"k": k, "v": (v or b"").decode()} for k, v in (m.headers() or [])],
            "ts": m.timestamp()[1]}


def poll_until(c, n):
    got, end = 0, time.time() + DEADLINE_S
    while got < n and time.time() < end:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            raise RuntimeError(str(m.error()))
        emit(record(m))
        got += 1
    return got


def consumer(bootstrap, extra=None):
    cfg = {"bootstrap.servers": bootstrap, "group.id": "unused-assign-only",
           "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 200}
    cfg.update(extra or {})
    return Consumer(conf(cfg))


def consume(bootstrap, topic, partitions, n, seek=None):
    c = consumer(bootstrap)
    if seek is None:
        c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(partitions)])
    else:
        p, o = (int(x) for x in seek.split(":"))
        c.assign([TopicPartition(topic, p, o)])
    emit({"op": "consumed", "n": poll_until(c, n)})
    c.close()


def offsets(bootstrap, topic, partitions, ts):
    c = consumer(bootstrap)
    by_ts = c.offsets_for_times([TopicPartition(topic, i, ts) for i in range(partitions)], timeout=30)
    for i in range(partitions):
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, i), timeout=30, cached=False)
        emit({"op": "offsets", "p": i, "earliest": lo, "latest": hi, "by_ts": by_ts[i].offset})
    c.close()


def admin(bootstrap, topic, partitions):
    a = AdminClient(conf({"bootstrap.servers": bootstrap}))
    a.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)
    emit({"op": "created"})
    md = a.list_topics(timeout=30)
    t = md.topics.get(topic)
    emit({"op": "listed", "found": t is not None, "partitions": len(t.partitions) if t else 0,
          "brokers": len(md.brokers)})
    a.delete_topics([topic])[topic].result(30)
    emit({"op": "deleted"})
    end, found = time.time() + DEADLINE_S, True
    while found and time.time() < end:
        found = topic in a.list_topics(timeout=30).topics
        if found:
            time.sleep(0.1)
    emit({"op": "listed_after_delete", "found": found})


def group(bootstrap, topic, n, group_id):
    c = consumer(bootstrap, {"group.id": group_id})
    c.subscribe([topic])
    got = poll_until(c, n)
    c.commit(asynchronous=False)
    committed = c.committed(c.assignment(), timeout=30)
    emit({"op": "consumed", "n": got, "committed_total": sum(tp.offset for tp in committed if tp.offset >= 0)})
    c.close()


def drain(bootstrap, topic, partitions, isolation):
    c = consumer(bootstrap, {"isolation.level": isolation, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(partitions)])
    ends = {str(i): c.get_watermark_offsets(TopicPartition(topic, i), timeout=30, cached=False)[1]
            for i in range(partitions)}
    emit({"op": "end_offsets", **ends})
    at_end, got, end = set(), 0, time.time() + DEADLINE_S
    while len(at_end) < partitions and time.time() < end:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
                continue
            raise RuntimeError(str(m.error()))
        emit(record(m))
        got += 1
    emit({"op": "drained", "n": got, "reached_end": len(at_end) == partitions})
    c.close()


def txn_etl(bootstrap, src, dst, group_id, txn_id, n):
    c = consumer(bootstrap, {"group.id": group_id, "isolation.level": "read_committed"})
    p = Producer(conf({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5,
                       "transaction.timeout.ms": 60000}))
    p.init_transactions(DEADLINE_S)
    c.subscribe([src])
    failed, delivered = [], [0]

    def on_delivery(err, msg):
        if err is not None:
            failed.append(str(err))
        else:
            delivered[0] += 1

    done, txns, end = 0, 0, time.time() + DEADLINE_S
    while done < n and time.time() < end:
        msgs = c.consume(num_messages=10, timeout=0.5)
        for m in msgs:
            if m.error():
                raise RuntimeError(str(m.error()))
        if not msgs:
            continue
        first, nxt = {}, {}
        for m in msgs:
            first.setdefault(m.partition(), m.offset())
            nxt[m.partition()] = m.offset() + 1
        p.begin_transaction()
        delivered[0] = 0
        for m in msgs:
            p.produce(dst, key=m.key(), value=b"etl:" + m.value(), partition=m.partition(),
                      headers=m.headers(), timestamp=m.timestamp()[1], on_delivery=on_delivery)
        left = p.flush(DEADLINE_S)
        if left or failed:
            raise RuntimeError(f"{left} records not delivered, failures {failed}")
        p.send_offsets_to_transaction([TopicPartition(src, q, o) for q, o in sorted(nxt.items())],
                                      c.consumer_group_metadata(), DEADLINE_S)
        if txns % 3 == 1:
            p.abort_transaction(DEADLINE_S)
            for q, o in first.items():
                c.seek(TopicPartition(src, q, o))
            result = "abort"
        else:
            p.commit_transaction(DEADLINE_S)
            done += len(msgs)
            result = "commit"
        emit({"op": "txn", "result": result, "records": len(msgs), "delivered": delivered[0]})
        txns += 1
    emit({"op": "etl_done", "committed": done})
    c.close()


def main(a):
    if len(a) > 1 and a[0] == "--config":
        with open(a[1]) as f:
            EXTRA.update(json.load(f))
        a = a[2:]
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
    elif a[0] == "drain":
        drain(a[1], a[2], int(a[3]), a[4])
    elif a[0] == "txn-etl":
        txn_etl(a[1], a[2], a[3], a[4], a[5], int(a[6]))
    else:
        raise SystemExit(f"unknown mode {a[0]}")


if __name__ == "__main__":
    main(sys.argv[1:])
