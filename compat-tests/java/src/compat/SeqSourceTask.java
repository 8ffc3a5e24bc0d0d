package compat;

import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

/**
 * SeqSourceTask writes record seqno (key: the task id, an int32; value:
 * seqno, an int64) with source partition {"task": id} and source offset
 * {"seqno": seqno}. On start it resumes at the committed offset's seqno + 1
 * (0 without one), so a restarted worker continues the sequence. It prints
 * {"op":"source_start","seqno":N,"resumed":B} on start and
 * {"op":"source_acked","seqno":N,"p":P,"o":O} when the broker acknowledged a record.
 */
public class SeqSourceTask extends SourceTask {
    private String topic;
    private int id;
    private long throughput, seqno, startSeqno, startMs;

    @Override public String version() { return "1"; }

    @Override
    public void start(Map<String, String> props) {
        topic = props.get("topic");
        id = Integer.parseInt(props.get("task.id"));
        throughput = Long.parseLong(props.getOrDefault("throughput", "100"));
        Map<String, Object> committed = context.offsetStorageReader().offset(Map.of("task", id));
        seqno = committed == null ? 0 : ((Number) committed.get("seqno")).longValue() + 1;
        startSeqno = seqno;
        startMs = System.currentTimeMillis();
        Emit.line("{\"op\":\"source_start\",\"seqno\":" + seqno + ",\"resumed\":" + (committed != null) + "}");
    }

    @Override
    public List<SourceRecord> poll() throws InterruptedException {
        // Throttle: record n of this run is due n/throughput seconds after start.
        long due = startMs + (seqno - startSeqno) * 1000 / throughput;
        long wait = due - System.currentTimeMillis();
        if (wait > 0) {
            Thread.sleep(Math.min(wait, 100));
            return null;
        }
        SourceRecord r = new SourceRecord(Map.of("task", id), Map.of("seqno", seqno), topic, null,
            Schema.INT32_SCHEMA, id, Schema.INT64_SCHEMA, seqno);
        seqno++;
        return List.of(r);
    }

    @Override
    public void commitRecord(SourceRecord r, RecordMetadata md) {
        if (md != null) {
            Emit.line("{\"op\":\"source_acked\",\"seqno\":" + r.value() + ",\"p\":" + md.partition()
                + ",\"o\":" + md.offset() + "}");
        }
    }

    @Override public void stop() {}
}
