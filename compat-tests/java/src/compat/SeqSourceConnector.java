package compat;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.source.SourceConnector;

/**
 * SeqSourceConnector writes an endless, throttled sequence 0, 1, 2, ... to a
 * topic, for StreamHouse's compatibility tests (../../../clients/connect_test.go),
 * as Apache Kafka's VerifiableSourceConnector does for its system tests (that
 * one ships in connect-test-plugins, which is not published to Maven Central).
 * Configs: topic, throughput (records per second). One task; see
 * {@link SeqSourceTask} for what it records and prints.
 */
public class SeqSourceConnector extends SourceConnector {
    static final ConfigDef CONFIG = new ConfigDef()
        .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "topic to write the sequence to")
        .define("throughput", ConfigDef.Type.LONG, 100L, ConfigDef.Importance.LOW, "records per second");

    private Map<String, String> props;

    @Override public String version() { return "1"; }
    @Override public void start(Map<String, String> props) { this.props = props; }
    @Override public Class<? extends Task> taskClass() { return SeqSourceTask.class; }
    @Override public void stop() {}
    @Override public ConfigDef config() { return CONFIG; }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        Map<String, String> p = new HashMap<>(props);
        p.put("task.id", "0");
        return List.of(p);
    }
}
