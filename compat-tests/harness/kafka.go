package harness

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// kafkaBroker is an Apache Kafka process: one node, broker and KRaft controller.
type kafkaBroker struct {
	addr string
	dir  string
	proc *process
}

// kafkaProps is server.properties for a single-node KRaft cluster on
// loopback. Internal topics get one partition and replica so that groups and
// transactions are ready in a second rather than after creating 50 partitions.
// The log cleaner looks for work every second (15 s by default), so that the
// compacted topics of the Streams and Connect tests get compacted while they run.
const kafkaProps = `process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:%[2]d
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d%[4]s
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d%[4]s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT%[5]s
log.dirs=%[3]s
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.backoff.ms=1000
%[6]s`

// StartKafka formats a KRaft storage dir under dir with a generated cluster
// ID, starts kafka.Kafka on two free 127.0.0.1 ports (client and controller)
// and waits until it answers ApiVersions and its Metadata lists the broker.
func StartKafka(dir string) (Broker, error) {
	return startKafka(dir, nil)
}

// startKafka is StartKafka; with sasl not nil it adds sasl's listener
// (kafkaSASLProps) and formats the storage with the admin user's
// SCRAM-SHA-256 and SCRAM-SHA-512 credentials (--add-scram).
func startKafka(dir string, sasl *saslListener) (Broker, error) {
	jars, err := KafkaJars()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	props := filepath.Join(dir, "server.properties")
	var listener, protoMap, saslProps string
	var addScram []string
	if sasl != nil {
		listener = fmt.Sprintf(",%s://%s", sasl.protocol, sasl.addr)
		protoMap = fmt.Sprintf(",%[1]s:%[1]s", sasl.protocol)
		saslProps = kafkaSASLProps(sasl)
		for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
			addScram = append(addScram, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", m, SASLAdminUser, SASLAdminPassword))
		}
	}
	text := fmt.Sprintf(kafkaProps, port, cport, filepath.Join(dir, "logs"), listener, protoMap, saslProps)
	if err := os.WriteFile(props, []byte(text), 0o644); err != nil {
		return nil, err
	}
	logCfg, err := log4jConfig(dir, "INFO")
	if err != nil {
		return nil, err
	}
	cp := filepath.Join(jars, "*")
	format := exec.Command("java", append([]string{"-Dlog4j2.configurationFile=" + logCfg, "-cp", cp,
		"kafka.tools.StorageTool", "format", "--standalone", "-t", clusterID(), "-c", props}, addScram...)...)
	fmt.Fprintf(os.Stderr, "harness: %s\n", strings.Join(format.Args, " "))
	if out, err := format.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("kafka-storage format: %v\n%s", err, out)
	}
	cmd := exec.Command("java", "-Xms512m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile="+logCfg, "-cp", cp, "kafka.Kafka", props)
	p, err := startProcess(cmd, filepath.Join(dir, "kafka.log"))
	if err != nil {
		return nil, err
	}
	b := &kafkaBroker{addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, proc: p}
	if err := waitAPIVersions(b.addr, p, 90*time.Second); err != nil {
		_ = b.Stop()
		return nil, fmt.Errorf("kafka on %s: %w", b.addr, err)
	}
	if err := waitBrokerRegistered(b.addr, 60*time.Second); err != nil {
		_ = b.Stop()
		return nil, fmt.Errorf("kafka on %s: %w\n%s", b.addr, err, p.logTail())
	}
	return b, nil
}

// clusterID is a random KRaft cluster ID: 16 bytes, URL-safe base64 without
// padding, not starting with '-' (kafka-storage's argument parser would take
// it for an option; Kafka's own Uuid.randomUuid skips those too).
func clusterID() string {
	var b [16]byte
	for {
		_, _ = rand.Read(b[:])
		if id := base64.RawURLEncoding.EncodeToString(b[:]); id[0] != '-' {
			return id
		}
	}
}

func (b *kafkaBroker) Kind() Kind        { return ApacheKafka }
func (b *kafkaBroker) Bootstrap() string { return b.addr }
func (b *kafkaBroker) LogTail() string   { return b.proc.logTail() }

// Stop stops the broker (SIGTERM, a controlled shutdown) and removes its dir.
func (b *kafkaBroker) Stop() error {
	err := b.proc.stop(30 * time.Second)
	if rerr := os.RemoveAll(b.dir); err == nil {
		err = rerr
	}
	return err
}
