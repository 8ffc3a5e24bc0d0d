// kafkajs driver for StreamHouse's compatibility tests (run by
// ../clients/kafkajs_test.go with node). Same protocol as ../python: records
// as JSON lines {"p","o","k","v","h":[{"k","v"}],"ts"} on stdin and stdout,
// other results as events {"op": ...}. kafkajs consumers always join a
// consumer group, so assign-style consumption is not possible. Usage:
//
//   produce  BOOTSTRAP TOPIC CODEC          idempotent producer, acks=all (none, gzip)
//   offsets  BOOTSTRAP TOPIC PARTITIONS TS  admin.fetchTopicOffsets(ByTimestamp)
//   admin    BOOTSTRAP TOPIC PARTITIONS     create, list, metadata, delete
//   group    BOOTSTRAP TOPIC N GROUP        consumer group from the beginning
'use strict';
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

const DEADLINE_MS = 60000;
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// kafkajs logs to stdout by default; its logs go to stderr here, so stdout
// carries only the protocol. COMPAT_KAFKAJS_LOGLEVEL=INFO|DEBUG shows more.
const logCreator = () => ({ namespace, level, label, log }) =>
  process.stderr.write(`${label} [${namespace}] ${log.message} ${JSON.stringify(log)}\n`);

function client(bootstrap) {
  const level = logLevel[process.env.COMPAT_KAFKAJS_LOGLEVEL || 'WARN'];
  return new Kafka({ clientId: 'compat-kafkajs', brokers: [bootstrap], logLevel: level, logCreator });
}

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

async function produce(bootstrap, topic, codec) {
  const recs = await readStdin();
  const producer = client(bootstrap).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const compression = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }[codec];
  // One send per partition keeps each partition's records in order in one batch.
  const byPartition = new Map();
  for (const r of recs) {
    if (!byPartition.has(r.p)) byPartition.set(r.p, []);
    byPartition.get(r.p).push(r);
  }
  for (const [p, rs] of byPartition) {
    const res = await producer.send({
      topic, acks: -1, compression,
      messages: rs.map((r) => ({
        partition: p, key: r.k, value: r.v, timestamp: String(r.ts),
        headers: Object.fromEntries(r.h.map((h) => [h.k, h.v])),
      })),
    });
    const base = Number(res[0].baseOffset);
    rs.forEach((_, i) => emit({ op: 'ack', p, o: base + i }));
  }
  await producer.disconnect();
}

async function offsets(bootstrap, topic, partitions, ts) {
  const admin = client(bootstrap).admin();
  await admin.connect();
  const latest = await admin.fetchTopicOffsets(topic);
  const byTs = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
  for (let p = 0; p < partitions; p++) {
    const l = latest.find((x) => x.partition === p);
    const t = byTs.find((x) => x.partition === p);
    emit({ op: 'offsets', p, earliest: Number(l.low), latest: Number(l.high), by_ts: Number(t.offset) });
  }
  await admin.disconnect();
}

async function admin(bootstrap, topic, partitions) {
  const a = client(bootstrap).admin();
  await a.connect();
  const created = await a.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  emit({ op: 'created', created });
  emit({ op: 'listed', found: (await a.listTopics()).includes(topic) });
  const md = await a.fetchTopicMetadata({ topics: [topic] });
  emit({ op: 'described', partitions: md.topics[0].partitions.length });
  await a.deleteTopics({ topics: [topic], timeout: 30000 });
  emit({ op: 'deleted' });
  const end = Date.now() + DEADLINE_MS;
  let found = true;
  while (found && Date.now() < end) {
    found = (await a.listTopics()).includes(topic);
    if (found) await new Promise((r) => setTimeout(r, 100));
  }
  emit({ op: 'listed_after_delete', found });
  await a.disconnect();
}

async function group(bootstrap, topic, n, groupId) {
  const kafka = client(bootstrap);
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  // A crash (e.g. a codec kafkajs lacks) fails at once instead of at the deadline.
  consumer.on(consumer.events.CRASH, (e) => { console.error('consumer crashed:', e.payload.error); process.exit(1); });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let got = 0;
  let done;
  const finished = new Promise((r) => { done = r; });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      emit({
        p: partition, o: Number(message.offset), k: message.key ? message.key.toString() : '',
        v: message.value ? message.value.toString() : '',
        h: Object.entries(message.headers || {}).map(([k, v]) => ({ k, v: v.toString() })),
        ts: Number(message.timestamp),
      });
      await consumer.commitOffsets([{ topic, partition, offset: String(Number(message.offset) + 1) }]);
      if (++got >= n) done();
    },
  });
  await Promise.race([finished, new Promise((r) => setTimeout(r, DEADLINE_MS))]);
  await consumer.stop();
  const a = kafka.admin();
  await a.connect();
  const committed = await a.fetchOffsets({ groupId, topics: [topic] });
  const total = committed[0].partitions.reduce((s, p) => s + Math.max(0, Number(p.offset)), 0);
  emit({ op: 'consumed', n: got, committed_total: total });
  await a.disconnect();
  await consumer.disconnect();
}

async function main(a) {
  switch (a[0]) {
    case 'produce': return produce(a[1], a[2], a[3]);
    case 'offsets': return offsets(a[1], a[2], Number(a[3]), Number(a[4]));
    case 'admin': return admin(a[1], a[2], Number(a[3]));
    case 'group': return group(a[1], a[2], Number(a[3]), a[4]);
    default: throw new Error(`unknown mode ${a[0]}`);
  }
}

main(process.argv.slice(2)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
