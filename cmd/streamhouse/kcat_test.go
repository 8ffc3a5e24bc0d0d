package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	streamhousepb "github.com/streamhouse/streamhouse/proto"
)

// kcatPath returns kcat (librdkafka's CLI, Debian package kcat). .ci/run
// installs it; elsewhere the test is skipped with the reason printed, and
// under CI a missing kcat fails.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kcat not installed (apt-get install kcat): %v", err)
		}
		t.Skipf("kcat not installed (apt-get install kcat; .ci/run does): %v", err)
	}
	return p
}

// TestKcatEveryCodec produces with librdkafka (kcat -P) in every codec and
// consumes with it (kcat -C), checking keys, values, partitions and offsets.
func TestKcatEveryCodec(t *testing.T) {
	kcat := kcatPath(t)
	p := startBroker(t, nil, localArgs(t.TempDir())...)
	p.ready(t)
	addr := p.listenAddr(t, "kafka")
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			var in strings.Builder
			const n = 200
			for i := 0; i < n; i++ {
				fmt.Fprintf(&in, "key-%d:value-%d-%s\n", i, i, strings.Repeat("x", i%50))
			}
			prod := exec.Command(kcat, "-b", addr, "-P", "-t", topic, "-p", "0", "-K:", "-z", codec,
				"-X", "enable.idempotence=true")
			prod.Stdin = strings.NewReader(in.String())
			if out, err := prod.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, out)
			}
			cons := exec.Command(kcat, "-b", addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e",
				"-f", "%p %o %k %s\n")
			out, err := cons.Output()
			if err != nil {
				t.Fatalf("kcat -C: %v\n%s", err, out)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != n {
				t.Fatalf("consumed %d records, want %d:\n%s", len(lines), n, out)
			}
			for i, l := range lines {
				want := fmt.Sprintf("0 %d key-%d value-%d-%s", i, i, i, strings.Repeat("x", i%50))
				if l != want {
					t.Fatalf("record %d = %q, want %q", i, l, want)
				}
			}
		})
	}
	p.stop(t)
}

// TestKcatGroupCommitReadOverGRPC consumes with a librdkafka consumer group
// (kcat -G), which commits its offsets over the Kafka protocol, and reads
// the committed offset back over the gRPC API: one set of rows, two fronts.
func TestKcatGroupCommitReadOverGRPC(t *testing.T) {
	kcat := kcatPath(t)
	p := startBroker(t, nil, localArgs(t.TempDir())...)
	p.ready(t)
	addr, grpcAddr := p.listenAddr(t, "kafka"), p.listenAddr(t, "grpc")
	var in strings.Builder
	const n = 50
	for i := 0; i < n; i++ {
		fmt.Fprintf(&in, "v%d\n", i)
	}
	prod := exec.Command(kcat, "-b", addr, "-P", "-t", "grouped", "-p", "0")
	prod.Stdin = strings.NewReader(in.String())
	if b, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, b)
	}
	cons := exec.Command(kcat, "-b", addr, "-G", "kcat-group", "grouped", "-o", "beginning", "-e",
		"-X", "session.timeout.ms=6000", "-f", "%s\n")
	got, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat -G: %v\n%s", err, got)
	}
	if lines := strings.Split(strings.TrimSpace(string(got)), "\n"); len(lines) != n || lines[0] != "v0" || lines[n-1] != fmt.Sprintf("v%d", n-1) {
		t.Fatalf("group consumer read %d records:\n%s", len(lines), got)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := streamhousepb.NewStreamHouseClient(conn).GetOffset(ctx,
		&streamhousepb.GetOffsetRequest{ConsumerGroup: "kcat-group", Topic: "grouped", Partition: 0})
	if err != nil {
		t.Fatalf("gRPC GetOffset of the offset kcat committed: %v", err)
	}
	if resp.Offset != n {
		t.Fatalf("committed offset over gRPC = %d, want %d", resp.Offset, n)
	}
	p.stop(t)
}
