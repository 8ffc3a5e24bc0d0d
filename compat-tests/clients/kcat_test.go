package clients

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// TestKcat: kcat (librdkafka, Debian) produces in each codec (-z) with
// enable.idempotence=true, one run per partition, keys split at a tab and a
// header per run (-H), and franz-go reads back; then franz-go produces in the
// same codec and kcat consumes every partition from the beginning (-J).
func TestKcat(t *testing.T) {
	b := harness.Start(t)
	kcat := harness.Tool(t, "kcat")
	for _, codec := range codecs {
		t.Run(codec, func(t *testing.T) {
			topic := harness.Topic(t)
			harness.CreateTopic(t, b, topic, 2)
			want := harness.Records(40, 2, "kcat-"+codec, time.Now())
			from := time.Now().UnixMilli()
			for p := int32(0); p < 2; p++ {
				var in strings.Builder
				for _, r := range want {
					if r.Partition == p {
						fmt.Fprintf(&in, "%s\t%s\n", r.Key, r.Value)
					}
				}
				harness.Run(t, time.Minute, in.String(), "", kcat, "-P", "-b", b.Bootstrap(), "-t", topic,
					"-p", fmt.Sprint(p), "-K", "\t", "-z", codec, "-H", "tag=kcat-"+codec,
					"-X", "enable.idempotence=true", "-X", "acks=all")
			}
			to := time.Now().UnixMilli()
			got := harness.Consume(t, b, topic, len(want))
			harness.CheckRecords(t, got, want, harness.Check{NoHeaders: true,
				FixedHeaders:      []harness.Header{{Key: "tag", Value: "kcat-" + codec}},
				TimestampsBetween: &[2]int64{from, to}})

			topic2 := harness.Topic(t)
			harness.CreateTopic(t, b, topic2, 2)
			harness.Produce(t, b, topic2, want, produceCodec(t, codec))
			out := harness.Run(t, time.Minute, "", "", kcat, "-C", "-b", b.Bootstrap(), "-t", topic2,
				"-o", "beginning", "-e", "-J", "-c", fmt.Sprint(len(want)))
			harness.CheckRecords(t, parseKcatJSON(t, out), want, harness.Check{})
		})
	}
}

// parseKcatJSON parses kcat -J lines: {"partition","offset","ts","headers":[k,v,...],"key","payload"}.
func parseKcatJSON(t *testing.T, out string) []harness.Record {
	t.Helper()
	var recs []harness.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m struct {
			Partition int32    `json:"partition"`
			Offset    int64    `json:"offset"`
			TS        int64    `json:"ts"`
			Headers   []string `json:"headers"`
			Key       string   `json:"key"`
			Payload   string   `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("kcat -J line %q: %v", line, err)
		}
		r := harness.Record{Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Payload, Timestamp: m.TS}
		for i := 0; i+1 < len(m.Headers); i += 2 {
			r.Headers = append(r.Headers, harness.Header{Key: m.Headers[i], Value: m.Headers[i+1]})
		}
		recs = append(recs, r)
	}
	return recs
}

// TestKcatMetadata: kcat -L -J lists the broker and a topic's partitions.
func TestKcatMetadata(t *testing.T) {
	b := harness.Start(t)
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	out := harness.Run(t, time.Minute, "", "", harness.Tool(t, "kcat"), "-L", "-J", "-b", b.Bootstrap(), "-t", topic)
	var md struct {
		Brokers []struct {
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J: %v\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != b.Bootstrap() {
		t.Errorf("brokers %+v, want one advertised as %s", md.Brokers, b.Bootstrap())
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != topic || len(md.Topics[0].Partitions) != 3 {
		t.Errorf("topics %+v, want %s with 3 partitions", md.Topics, topic)
	}
}
