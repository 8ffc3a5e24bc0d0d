// Compat drives Apache Kafka's Java client (kafka-clients 4.4.0) for
// StreamHouse's compatibility tests (../../clients/java_test.go compiles it with
// javac and runs it with `java -cp`). Records come in on stdin and go out on
// stdout as JSON lines {"p","o","k","v","h":[{"k","v"}],"ts"}; other results
// are events {"op": ...}. Usage:
//
//   produce  BOOTSTRAP TOPIC CODEC            idempotent, acks=all; stdin: records
//   consume  BOOTSTRAP TOPIC PARTITIONS N [P:OFFSET]
//            assign + seekToBeginning (or seek P to OFFSET, assigning only P)
//   offsets  BOOTSTRAP TOPIC PARTITIONS TS    beginning/end offsets, offsetsForTimes(TS)
//   admin    BOOTSTRAP TOPIC PARTITIONS       create, list, describe, delete
//   group    BOOTSTRAP TOPIC N GROUP [PROTOCOL]
//            subscribe (consumer group), commit; PROTOCOL sets group.protocol
//            (classic or consumer; unset: the client's default)
//   drain    BOOTSTRAP TOPIC PARTITIONS ISOLATION [long]
//            assign + seekToBeginning at isolation.level ISOLATION (read_committed
//            or read_uncommitted) and read until every position reaches the end
//            offset (the last stable offset under read_committed); with "long",
//            values are 8-byte longs (Kafka Streams' Serdes.Long), printed in decimal
//   txn      BOOTSTRAP TOPIC TXN_ID_PREFIX PRODUCERS
//            transactional producers TXN_ID_PREFIX-0 ... run a script from stdin,
//            one command a line: {"cmd":"begin"|"flush"|"commit"|"abort","producer":I}
//            or {"cmd":"send","producer":I, record fields}. After each flush, commit
//            and abort, every send of that producer is reported: {"op":"ack","k","p","o"}
//            or {"op":"send_failed","k","error"}; then {"op":"ended","producer","result"}
//   txn-open BOOTSTRAP TOPIC TXN_ID TIMEOUT_MS PARTITIONS N
//            begins a transaction (transaction.timeout.ms TIMEOUT_MS), sends N
//            records to each partition, flushes, prints the acks and {"op":"open"},
//            then waits, the transaction open, to be killed (10 minutes at most)
//   txn-init BOOTSTRAP TXN_ID
//            initTransactions (fencing an earlier producer of TXN_ID and aborting
//            its open transaction), then closes: {"op":"initialized"}
//   auth     BOOTSTRAP
//            Admin.describeCluster, reporting whether the client got in:
//            {"op":"auth","ok":true} or {"op":"auth","ok":false,"error":EXCEPTION_CLASS,"message"}
//
// Before the mode, "--config FILE" adds the client properties in FILE (e.g.
// security.protocol, sasl.mechanism, sasl.jaas.config) to every client.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Compat {
    static final ObjectMapper M = new ObjectMapper();
    static final long DEADLINE_MS = 60_000;

    /** Client properties from --config, added to every client's. */
    static final Properties EXTRA = new Properties();

    static Properties props() { Properties p = new Properties(); p.putAll(EXTRA); return p; }

    public static void main(String[] a) throws Exception {
        if (a.length > 1 && a[0].equals("--config")) {
            try (java.io.Reader r = java.nio.file.Files.newBufferedReader(java.nio.file.Path.of(a[1]))) { EXTRA.load(r); }
            a = Arrays.copyOfRange(a, 2, a.length);
        }
        switch (a[0]) {
            case "produce": produce(a[1], a[2], a[3]); break;
            case "consume": consume(a[1], a[2], Integer.parseInt(a[3]), Integer.parseInt(a[4]), a.length > 5 ? a[5] : null); break;
            case "offsets": offsets(a[1], a[2], Integer.parseInt(a[3]), Long.parseLong(a[4])); break;
            case "admin": admin(a[1], a[2], Integer.parseInt(a[3])); break;
            case "group": group(a[1], a[2], Integer.parseInt(a[3]), a[4], a.length > 5 ? a[5] : null); break;
            case "drain": drain(a[1], a[2], Integer.parseInt(a[3]), a[4], a.length > 5 && a[5].equals("long")); break;
            case "txn": txn(a[1], a[2], a[3], Integer.parseInt(a[4])); break;
            case "txn-open": txnOpen(a[1], a[2], a[3], a[4], Integer.parseInt(a[5]), Integer.parseInt(a[6])); break;
            case "txn-init": txnInit(a[1], a[2]); break;
            case "auth": auth(a[1]); break;
            default: throw new IllegalArgumentException("unknown mode " + a[0]);
        }
    }

    static void emit(ObjectNode n) { System.out.println(n.toString()); System.out.flush(); }

    static ObjectNode event(String op) { ObjectNode n = M.createObjectNode(); n.put("op", op); return n; }

    static void produce(String bootstrap, String topic, String codec) throws Exception {
        Properties p = props();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        List<ProducerRecord<byte[], byte[]>> recs = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.isBlank()) continue;
            recs.add(toProducerRecord(topic, M.readTree(line)));
        }
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (ProducerRecord<byte[], byte[]> pr : recs) fs.add(prod.send(pr));
            prod.flush();
            for (java.util.concurrent.Future<RecordMetadata> f : fs) {
                RecordMetadata md = f.get(60, TimeUnit.SECONDS);
                ObjectNode e = event("ack");
                e.put("p", md.partition());
                e.put("o", md.offset());
                emit(e);
            }
        }
    }

    static byte[] bytes(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static Properties consumerProps(String bootstrap) {
        Properties p = props();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200");
        return p;
    }

    static void emitRecord(ConsumerRecord<byte[], byte[]> r) { emitRecord(r, false); }

    static void emitRecord(ConsumerRecord<byte[], byte[]> r, boolean longValue) {
        ObjectNode n = M.createObjectNode();
        n.put("p", r.partition());
        n.put("o", r.offset());
        n.put("k", r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8));
        if (longValue && r.value() != null && r.value().length == 8) {
            n.put("v", String.valueOf(java.nio.ByteBuffer.wrap(r.value()).getLong()));
        } else if (longValue) {
            n.put("v", "not a long: " + (r.value() == null ? "null" : r.value().length + " bytes"));
        } else {
            n.put("v", r.value() == null ? "" : new String(r.value(), StandardCharsets.UTF_8));
        }
        ArrayNode hs = n.putArray("h");
        for (Header h : r.headers()) hs.addObject().put("k", h.key()).put("v", new String(h.value(), StandardCharsets.UTF_8));
        n.put("ts", r.timestamp());
        emit(n);
    }

    static int pollUntil(Consumer<byte[], byte[]> c, int n) {
        int got = 0;
        long end = System.currentTimeMillis() + DEADLINE_MS;
        while (got < n && System.currentTimeMillis() < end) {
            for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) { emitRecord(r); got++; }
        }
        return got;
    }

    static void consume(String bootstrap, String topic, int partitions, int n, String seek) {
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(bootstrap), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            if (seek == null) {
                List<TopicPartition> tps = new ArrayList<>();
                for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
                c.assign(tps);
                c.seekToBeginning(tps);
            } else {
                String[] po = seek.split(":");
                TopicPartition tp = new TopicPartition(topic, Integer.parseInt(po[0]));
                c.assign(List.of(tp));
                c.seek(tp, Long.parseLong(po[1]));
            }
            int got = pollUntil(c, n);
            ObjectNode e = event("consumed");
            e.put("n", got);
            emit(e);
        }
    }

    static void offsets(String bootstrap, String topic, int partitions, long ts) {
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(bootstrap), new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            Map<TopicPartition, Long> query = new HashMap<>();
            for (int i = 0; i < partitions; i++) { TopicPartition tp = new TopicPartition(topic, i); tps.add(tp); query.put(tp, ts); }
            Map<TopicPartition, Long> begin = c.beginningOffsets(tps, Duration.ofSeconds(30));
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            Map<TopicPartition, OffsetAndTimestamp> byTs = c.offsetsForTimes(query, Duration.ofSeconds(30));
            for (TopicPartition tp : tps) {
                ObjectNode e = event("offsets");
                e.put("p", tp.partition());
                e.put("earliest", begin.get(tp));
                e.put("latest", end.get(tp));
                OffsetAndTimestamp ot = byTs.get(tp);
                e.put("by_ts", ot == null ? -1 : ot.offset());
                e.put("by_ts_timestamp", ot == null ? -1 : ot.timestamp());
                emit(e);
            }
        }
    }

    static void admin(String bootstrap, String topic, int partitions) throws Exception {
        Properties p = props();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin adm = Admin.create(p)) {
            adm.createTopics(List.of(new NewTopic(topic, partitions, (short) 1))).all().get(30, TimeUnit.SECONDS);
            emit(event("created"));
            ObjectNode l = event("listed");
            l.put("found", adm.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic));
            emit(l);
            TopicDescription d = adm.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            ObjectNode de = event("described");
            de.put("partitions", d.partitions().size());
            de.put("leaders", d.partitions().stream().filter(x -> x.leader() != null).count());
            de.put("topic_id", d.topicId().toString());
            emit(de);
            ObjectNode cl = event("cluster");
            cl.put("brokers", adm.describeCluster().nodes().get(30, TimeUnit.SECONDS).size());
            cl.put("cluster_id", adm.describeCluster().clusterId().get(30, TimeUnit.SECONDS));
            emit(cl);
            adm.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            emit(event("deleted"));
            long end = System.currentTimeMillis() + DEADLINE_MS;
            boolean found = true;
            while (found && System.currentTimeMillis() < end) {
                found = adm.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic);
                if (found) Thread.sleep(100);
            }
            ObjectNode g = event("listed_after_delete");
            g.put("found", found);
            emit(g);
        }
    }

    static void group(String bootstrap, String topic, int n, String groupId, String protocol) {
        Properties p = consumerProps(bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
        if (protocol != null) p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            c.subscribe(List.of(topic));
            int got = pollUntil(c, n);
            c.commitSync(Duration.ofSeconds(30));
            ObjectNode e = event("consumed");
            e.put("n", got);
            Set<TopicPartition> asg = c.assignment();
            Map<TopicPartition, OffsetAndMetadata> committed = c.committed(asg, Duration.ofSeconds(30));
            long total = 0;
            for (OffsetAndMetadata om : committed.values()) if (om != null) total += om.offset();
            e.put("committed_total", total);
            emit(e);
        }
    }

    static void drain(String bootstrap, String topic, int partitions, String isolation, boolean longValues) {
        Properties p = consumerProps(bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) tps.add(new TopicPartition(topic, i));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(30));
            ObjectNode ends = event("end_offsets");
            for (TopicPartition tp : tps) ends.put(String.valueOf(tp.partition()), end.get(tp));
            emit(ends);
            int got = 0;
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            boolean reached = false;
            while (!reached && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) { emitRecord(r, longValues); got++; }
                reached = true;
                for (TopicPartition tp : tps) reached &= c.position(tp, Duration.ofSeconds(30)) >= end.get(tp);
            }
            ObjectNode e = event("drained");
            e.put("n", got);
            e.put("reached_end", reached);
            emit(e);
        }
    }

    static void auth(String bootstrap) throws Exception {
        Properties p = props();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        ObjectNode e = event("auth");
        try (Admin adm = Admin.create(p)) {
            adm.describeCluster().clusterId().get(30, TimeUnit.SECONDS);
            e.put("ok", true);
        } catch (java.util.concurrent.ExecutionException ex) {
            e.put("ok", false);
            e.put("error", ex.getCause().getClass().getName());
            e.put("message", String.valueOf(ex.getCause().getMessage()));
        }
        emit(e);
    }

    static KafkaProducer<byte[], byte[]> transactional(String bootstrap, String txnId, String timeoutMs) {
        Properties p = props();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
        p.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "60000");
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    static ProducerRecord<byte[], byte[]> toProducerRecord(String topic, JsonNode r) {
        ProducerRecord<byte[], byte[]> pr = new ProducerRecord<>(topic, r.get("p").asInt(), r.get("ts").asLong(),
                bytes(r.get("k").asText()), bytes(r.get("v").asText()));
        for (JsonNode h : r.get("h")) pr.headers().add(h.get("k").asText(), bytes(h.get("v").asText()));
        return pr;
    }

    // reportSends waits for every pending send of one producer and reports it.
    static void reportSends(List<String> keys, List<Future<RecordMetadata>> fs) {
        for (int i = 0; i < fs.size(); i++) {
            ObjectNode e;
            try {
                RecordMetadata md = fs.get(i).get(60, TimeUnit.SECONDS);
                e = event("ack");
                e.put("p", md.partition());
                e.put("o", md.offset());
            } catch (Exception ex) {
                e = event("send_failed");
                Throwable cause = ex.getCause() != null ? ex.getCause() : ex;
                e.put("error", cause.getClass().getSimpleName());
            }
            e.put("k", keys.get(i));
            emit(e);
        }
        keys.clear();
        fs.clear();
    }

    static void txn(String bootstrap, String topic, String prefix, int producers) throws Exception {
        List<KafkaProducer<byte[], byte[]>> ps = new ArrayList<>();
        List<List<String>> keys = new ArrayList<>();
        List<List<Future<RecordMetadata>>> pending = new ArrayList<>();
        try {
            for (int i = 0; i < producers; i++) {
                KafkaProducer<byte[], byte[]> prod = transactional(bootstrap, prefix + "-" + i, "60000");
                ps.add(prod);
                prod.initTransactions();
                keys.add(new ArrayList<>());
                pending.add(new ArrayList<>());
            }
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isBlank()) continue;
                JsonNode c = M.readTree(line);
                int i = c.get("producer").asInt();
                KafkaProducer<byte[], byte[]> prod = ps.get(i);
                String cmd = c.get("cmd").asText();
                switch (cmd) {
                    case "begin": prod.beginTransaction(); break;
                    case "send":
                        keys.get(i).add(c.get("k").asText());
                        pending.get(i).add(prod.send(toProducerRecord(topic, c)));
                        break;
                    case "flush": prod.flush(); reportSends(keys.get(i), pending.get(i)); break;
                    case "commit": prod.commitTransaction(); reportSends(keys.get(i), pending.get(i)); break;
                    case "abort": prod.abortTransaction(); reportSends(keys.get(i), pending.get(i)); break;
                    default: throw new IllegalArgumentException("unknown txn command " + cmd);
                }
                if (cmd.equals("commit") || cmd.equals("abort")) {
                    ObjectNode e = event("ended");
                    e.put("producer", i);
                    e.put("result", cmd);
                    emit(e);
                }
            }
        } finally {
            for (KafkaProducer<byte[], byte[]> prod : ps) prod.close(Duration.ofSeconds(30));
        }
    }

    static void txnOpen(String bootstrap, String topic, String txnId, String timeoutMs, int partitions, int n) throws Exception {
        KafkaProducer<byte[], byte[]> prod = transactional(bootstrap, txnId, timeoutMs);
        prod.initTransactions();
        prod.beginTransaction();
        List<String> keys = new ArrayList<>();
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            for (int i = 0; i < n; i++) {
                String k = "open-" + p + "-" + i;
                keys.add(k);
                fs.add(prod.send(new ProducerRecord<>(topic, p, bytes(k), bytes("never committed " + i))));
            }
        }
        prod.flush();
        reportSends(keys, fs);
        emit(event("open"));
        // Neither commit nor abort nor close: the test kills this JVM. The
        // bound only keeps a forgotten process from living forever.
        new CountDownLatch(1).await(10, TimeUnit.MINUTES);
        Runtime.getRuntime().halt(3);
    }

    static void txnInit(String bootstrap, String txnId) {
        try (KafkaProducer<byte[], byte[]> prod = transactional(bootstrap, txnId, "60000")) {
            prod.initTransactions();
            emit(event("initialized"));
        }
    }
}
