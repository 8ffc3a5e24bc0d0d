package compat;

import java.util.Collection;
import java.util.Map;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;

/**
 * SeqSinkTask prints {"op":"sink_start","task":T} on start,
 * {"op":"sink","task":T,"seqno":N,"p":P,"o":O} for every record put to it
 * (the framework delivers at least once, from the group's committed offsets)
 * and {"op":"sink_flush","p":P,"o":O} for each offset the framework is about
 * to commit.
 */
public class SeqSinkTask extends SinkTask {
    private int id;

    @Override public String version() { return "1"; }

    @Override
    public void start(Map<String, String> props) {
        id = Integer.parseInt(props.get("task.id"));
        Emit.line("{\"op\":\"sink_start\",\"task\":" + id + "}");
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        for (SinkRecord r : records) {
            Emit.line("{\"op\":\"sink\",\"task\":" + id + ",\"seqno\":" + ((Number) r.value()).longValue()
                + ",\"p\":" + r.kafkaPartition() + ",\"o\":" + r.kafkaOffset() + "}");
        }
    }

    @Override
    public void flush(Map<TopicPartition, OffsetAndMetadata> offsets) {
        offsets.forEach((tp, om) -> Emit.line("{\"op\":\"sink_flush\",\"p\":" + tp.partition() + ",\"o\":" + om.offset() + "}"));
    }

    @Override public void stop() {}
}
