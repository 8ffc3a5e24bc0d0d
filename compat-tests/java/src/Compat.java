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
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
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

    public static void main(String[] a) throws Exception {
        switch (a[0]) {
            case "produce": produce(a[1], a[2], a[3]); break;
            case "consume": consume(a[1], a[2], Integer.parseInt(a[3]), Integer.parseInt(a[4]), a.length > 5 ? a[5] : null); break;
            case "offsets": offsets(a[1], a[2], Integer.parseInt(a[3]), Long.parseLong(a[4])); break;
            case "admin": admin(a[1], a[2], Integer.parseInt(a[3])); break;
            case "group": group(a[1], a[2], Integer.parseInt(a[3]), a[4], a.length > 5 ? a[5] : null); break;
            default: throw new IllegalArgumentException("unknown mode " + a[0]);
        }
    }

    static void emit(ObjectNode n) { System.out.println(n.toString()); System.out.flush(); }

    static ObjectNode event(String op) { ObjectNode n = M.createObjectNode(); n.put("op", op); return n; }

    static void produce(String bootstrap, String topic, String codec) throws Exception {
        Properties p = new Properties();
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
            JsonNode r = M.readTree(line);
            ProducerRecord<byte[], byte[]> pr = new ProducerRecord<>(topic, r.get("p").asInt(), r.get("ts").asLong(),
                    bytes(r.get("k").asText()), bytes(r.get("v").asText()));
            for (JsonNode h : r.get("h")) pr.headers().add(h.get("k").asText(), bytes(h.get("v").asText()));
            recs.add(pr);
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
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "200");
        return p;
    }

    static void emitRecord(ConsumerRecord<byte[], byte[]> r) {
        ObjectNode n = M.createObjectNode();
        n.put("p", r.partition());
        n.put("o", r.offset());
        n.put("k", r.key() == null ? "" : new String(r.key(), StandardCharsets.UTF_8));
        n.put("v", r.value() == null ? "" : new String(r.value(), StandardCharsets.UTF_8));
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
        Properties p = new Properties();
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
}
