package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamhouse/streamhouse/meta/pgtest"
)

// TestProcessOnPostgres runs the broker binary with --metadata naming a
// PostgreSQL database: topics, segments and committed offsets live there,
// survive a restart, and the password never reaches the log.
func TestProcessOnPostgres(t *testing.T) {
	url := strings.Replace(pgtest.DB(t), "postgres@", "postgres:hunter2secret@", 1)
	dir := t.TempDir()
	args := append(localArgs(dir), "--metadata", url, "--segment-bytes", "4096")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := startBroker(t, nil, args...)
	p.ready(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.listenAddr(t, "kafka")), kgo.DefaultProduceTopic("pg"),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := range n {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 10)), Value: []byte(fmt.Sprintf("value-%d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			cl.Close()
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	cl.Close()
	p.stop(t)
	out := p.out.String()
	if strings.Contains(out, "hunter2secret") {
		t.Fatalf("the PostgreSQL password is in the log:\n%s", out)
	}
	if _, ok := findLog(out, "storing", "metadata", strings.Replace(url, "hunter2secret", "xxxxx", 1)); !ok {
		t.Errorf("no storing line naming the redacted URL:\n%s", out)
	}

	if _, err := os.Stat(filepath.Join(dir, "metadata.db")); !os.IsNotExist(err) {
		t.Fatalf("a SQLite file was made beside the PostgreSQL metadata: %v", err)
	}

	p = startBroker(t, nil, args...)
	p.ready(t)
	defer p.stop(t)
	cl, err = kgo.NewClient(kgo.SeedBrokers(p.listenAddr(t, "kafka")), kgo.ConsumeTopics("pg"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.ConsumerGroup("pg-group"),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := 0
	for seen < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("after a restart on PostgreSQL, read %d of %d records: %v", seen, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("value-%d", r.Offset); string(r.Value) != want {
				t.Fatalf("offset %d holds %q, want %q", r.Offset, r.Value, want)
			}
			seen++
		})
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMetadataURLSetting(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"postgres://u:p@db.example:5432/streamhouse", true},
		{"postgresql://u@127.0.0.1/db?sslmode=disable", true},
		{"postgres:///db", false},
		{"postgres://%zz", false},
		{"/var/lib/streamhouse/metadata.db", true},
	} {
		cfg, err := LoadConfig([]string{"--metadata", tc.value}, func(string) (string, bool) { return "", false })
		var se *SettingError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: %v", tc.value, err)
		case tc.ok && cfg.MetadataPath != tc.value:
			t.Errorf("%q: MetadataPath %q", tc.value, cfg.MetadataPath)
		case !tc.ok && !errors.As(err, &se):
			t.Errorf("%q: err %v, want a SettingError", tc.value, err)
		}
	}
	if got := redactedMetadata("postgres://u:secret@h/db"); strings.Contains(got, "secret") {
		t.Errorf("redacted %q", got)
	}
}
