package clients

import "testing"

// kafkajs consumers always join a group, so reading needs consumer groups;
// its producer compresses with gzip only (other codecs are plugins).
var kafkajs = scriptDriver("kafkajs", "node", "js/compat.js")

func TestKafkaJSProducer(t *testing.T)      { testDriverProduce(t, kafkajs, []string{"none", "gzip"}) }
func TestKafkaJSListOffsets(t *testing.T)   { testDriverListOffsets(t, kafkajs) }
func TestKafkaJSAdmin(t *testing.T)         { testDriverAdmin(t, kafkajs) }
func TestKafkaJSGroupConsumer(t *testing.T) { testDriverGroup(t, kafkajs, "gzip") }
