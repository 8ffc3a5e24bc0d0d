// WordCount is a stateful Kafka Streams 4.4.0 application for StreamHouse's
// compatibility tests (../../clients/streams_test.go compiles it with javac and
// runs it with `java -cp`, stopping it with SIGTERM). It splits the values of
// INPUT into lower-case words, re-keys them by word (repartition topic
// APP_ID-words-repartition), counts them in a KTable (state store "counts",
// changelog APP_ID-counts-changelog, which Streams creates compacted) and
// writes every update to OUTPUT (key: the word, value: its count, a long).
// Record caches are off, so each input word yields one update.
//
// Usage: WordCount BOOTSTRAP APP_ID INPUT OUTPUT STATE_DIR [KEY=VALUE ...]
// where KEY=VALUE are further StreamsConfig properties (e.g. topic.segment.ms,
// processing.guarantee=exactly_once_v2), except compat.record.delay.ms=N: a
// pause of N ms per input record, a rate limit, so that a test can kill the
// application while it is still working through its input.
//
// Events on stdout, one JSON object a line:
//   {"op":"state","state":S}                          each state transition
//   {"op":"restore_start","topic","p","store","start","end"}
//   {"op":"restored","topic","p","store","records"}   a changelog partition restored
//   {"op":"closed","clean":B}                         from the SIGTERM shutdown hook
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

public class WordCount {
    static final ObjectMapper M = new ObjectMapper();

    static synchronized void emit(ObjectNode n) { System.out.println(n.toString()); System.out.flush(); }

    static ObjectNode event(String op) { ObjectNode n = M.createObjectNode(); n.put("op", op); return n; }

    static void pause(long ms) {
        if (ms <= 0) return;
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    public static void main(String[] a) throws Exception {
        String bootstrap = a[0], appId = a[1], input = a[2], output = a[3], stateDir = a[4];
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
        long delayMs = 0;
        for (int i = 5; i < a.length; i++) {
            String[] kv = a[i].split("=", 2);
            if (kv[0].equals("compat.record.delay.ms")) delayMs = Long.parseLong(kv[1]);
            else p.put(kv[0], kv[1]);
        }
        final long delay = delayMs;

        StreamsBuilder sb = new StreamsBuilder();
        sb.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .peek((k, v) -> pause(delay))
            .flatMapValues(v -> Arrays.asList(v.toLowerCase(Locale.ROOT).split("\\W+")))
            .filter((k, w) -> !w.isEmpty())
            .groupBy((k, w) -> w, Grouped.with("words", Serdes.String(), Serdes.String()))
            .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
                .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
            .toStream()
            .to(output, Produced.with(Serdes.String(), Serdes.Long()));

        KafkaStreams streams = new KafkaStreams(sb.build(), p);
        streams.setStateListener((now, before) -> emit(event("state").put("state", now.toString())));
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
                emit(event("restore_start").put("topic", tp.topic()).put("p", tp.partition()).put("store", store)
                    .put("start", start).put("end", end));
            }

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long n) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                emit(event("restored").put("topic", tp.topic()).put("p", tp.partition()).put("store", store)
                    .put("records", total));
            }
        });
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // Leave the group, so that the next instance is assigned the
            // tasks at once instead of after this member's session timeout.
            boolean clean = streams.close(CloseOptions.groupMembershipOperation(
                CloseOptions.GroupMembershipOperation.LEAVE_GROUP).withTimeout(Duration.ofSeconds(30)));
            emit(event("closed").put("clean", clean));
            closed.countDown();
        }));
        streams.start();
        closed.await();
    }
}
