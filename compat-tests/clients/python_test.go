package clients

import "testing"

var (
	confluent   = scriptDriver("confluent", "python", "python/confluent_compat.py")
	kafkaPython = scriptDriver("kafka-python", "python", "python/kafka_python_compat.py")
)

// confluent-kafka (librdkafka 2.16): idempotent producer in every codec,
// assign-based consumer, offsets, AdminClient, and a group consumer.
func TestConfluentProducer(t *testing.T)       { testDriverProduce(t, confluent, codecs) }
func TestConfluentAssignConsumer(t *testing.T) { testDriverAssignConsume(t, confluent, codecs) }
func TestConfluentListOffsets(t *testing.T)    { testDriverListOffsets(t, confluent) }
func TestConfluentAdmin(t *testing.T)          { testDriverAdmin(t, confluent) }
func TestConfluentGroupConsumer(t *testing.T)  { testDriverGroup(t, confluent, "zstd") }

// kafka-python: idempotent producer, assign + seek consumer, offsets,
// KafkaAdminClient, and a group consumer.
func TestKafkaPythonProducer(t *testing.T)       { testDriverProduce(t, kafkaPython, codecs) }
func TestKafkaPythonAssignConsumer(t *testing.T) { testDriverAssignConsume(t, kafkaPython, codecs) }
func TestKafkaPythonListOffsets(t *testing.T)    { testDriverListOffsets(t, kafkaPython) }
func TestKafkaPythonAdmin(t *testing.T)          { testDriverAdmin(t, kafkaPython) }
func TestKafkaPythonGroupConsumer(t *testing.T)  { testDriverGroup(t, kafkaPython, "lz4") }
