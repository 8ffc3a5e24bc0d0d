package grpcapi_test

import (
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/streamhouse/streamhouse/grpcapi/grpcapitest"
)

// TestGrpcurl drives the API with the pinned grpcurl, which knows nothing
// of streamhouse.proto: everything it learns comes from server reflection.
func TestGrpcurl(t *testing.T) {
	bin := grpcapitest.Grpcurl(t)
	e := grpcapitest.Start(t, grpcapitest.Options{})
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-plaintext"}, args...)
		out, err := exec.CommandContext(ctx(t), bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	call := func(method, body string, into any) {
		t.Helper()
		out := run("-d", body, e.Addr, "streamhouse.StreamHouse/"+method)
		if err := json.Unmarshal([]byte(out), into); err != nil {
			t.Fatalf("%s answered %q: %v", method, out, err)
		}
	}

	services := strings.Fields(run(e.Addr, "list"))
	for _, want := range []string{"streamhouse.StreamHouse", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(services, " "), want) {
			t.Fatalf("services %v lack %s", services, want)
		}
	}
	methods := run(e.Addr, "list", "streamhouse.StreamHouse")
	for _, m := range []string{"CreateTopic", "GetTopic", "ListTopics", "DeleteTopic", "Produce", "ProduceBatch",
		"Consume", "CommitOffset", "GetOffset"} {
		if !strings.Contains(methods, "streamhouse.StreamHouse."+m) {
			t.Fatalf("methods %q lack %s", methods, m)
		}
	}
	if out := run(e.Addr, "grpc.health.v1.Health/Check"); !strings.Contains(out, "SERVING") {
		t.Fatalf("health: %s", out)
	}

	var created struct {
		TopicID        string `json:"topicId"`
		PartitionCount int    `json:"partitionCount"`
	}
	call("CreateTopic", `{"name":"curl","partition_count":2}`, &created)
	if created.PartitionCount != 2 || created.TopicID == "" {
		t.Fatalf("created %+v", created)
	}
	var produced struct {
		Offset    string `json:"offset"`
		Timestamp string `json:"timestamp"`
	}
	value := base64.StdEncoding.EncodeToString([]byte("hello"))
	call("Produce", `{"topic":"curl","partition":1,"value":"`+value+`","headers":{"h":"v"},"timestamp":"1234"}`, &produced)
	if produced.Timestamp != "1234" {
		t.Fatalf("produced %+v", produced)
	}
	call("Produce", `{"topic":"curl","partition":1,"value":"`+value+`"}`, &produced)
	if produced.Offset != "1" {
		t.Fatalf("second produce %+v", produced)
	}
	var consumed struct {
		Records []struct {
			Offset    string            `json:"offset"`
			Timestamp string            `json:"timestamp"`
			Value     []byte            `json:"value"`
			Headers   map[string]string `json:"headers"`
		} `json:"records"`
		HighWatermark string `json:"highWatermark"`
	}
	call("Consume", `{"topic":"curl","partition":1}`, &consumed)
	if len(consumed.Records) != 2 || consumed.HighWatermark != "2" || string(consumed.Records[0].Value) != "hello" ||
		consumed.Records[0].Timestamp != "1234" || consumed.Records[0].Headers["h"] != "v" || consumed.Records[1].Offset != "1" {
		t.Fatalf("consumed %+v", consumed)
	}
}
