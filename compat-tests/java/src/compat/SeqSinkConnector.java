package compat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;

/**
 * SeqSinkConnector reads what {@link SeqSourceConnector} wrote and prints
 * every record, as Apache Kafka's VerifiableSinkConnector does; see
 * {@link SeqSinkTask}. Configs: topics (the framework's), tasks.max.
 */
public class SeqSinkConnector extends SinkConnector {
    private Map<String, String> props;

    @Override public String version() { return "1"; }
    @Override public void start(Map<String, String> props) { this.props = props; }
    @Override public Class<? extends Task> taskClass() { return SeqSinkTask.class; }
    @Override public void stop() {}
    @Override public ConfigDef config() { return new ConfigDef(); }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        List<Map<String, String>> out = new ArrayList<>();
        for (int i = 0; i < maxTasks; i++) {
            Map<String, String> p = new HashMap<>(props);
            p.put("task.id", Integer.toString(i));
            out.add(p);
        }
        return out;
    }
}
