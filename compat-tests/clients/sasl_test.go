package clients

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

// javaSASLProps writes the client properties of a Java client (or of
// kafka-configs.sh's --command-config) for b's SASL listener with
// mechanism (SCRAM-SHA-256 or -512) as user, and returns the file.
func javaSASLProps(t *testing.T, b *harness.SASLBroker, mechanism, user, password string) string {
	t.Helper()
	props := fmt.Sprintf("security.protocol=%s\nsasl.mechanism=%s\n"+
		"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"%s\" password=\"%s\";\n",
		b.Protocol, mechanism, user, password)
	if b.CAFile != "" {
		props += "ssl.truststore.type=PEM\nssl.truststore.location=" + b.CAFile + "\n"
	}
	p := filepath.Join(t.TempDir(), user+".properties")
	if err := os.WriteFile(p, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitSASLLogin polls, with franz-go, until mech logs in on b's SASL
// listener: Apache Kafka's brokers learn a new credential from the
// metadata log, a moment after AlterUserScramCredentials answered.
func waitSASLLogin(t *testing.T, b *harness.SASLBroker, mech sasl.Mechanism) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(b.SASLAddr), kgo.SASL(mech), kgo.RetryTimeout(2 * time.Second)}
	if b.CAFile != "" {
		pem, err := os.ReadFile(b.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	}
	harness.Eventually(t, 30*time.Second, func() error {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = kadm.NewClient(cl).ListTopics(ctx)
		return err
	})
}

// scramDescribe matches a user's line of kafka-configs --describe
// --entity-type users: "SCRAM credential configs for user-principal
// 'alice' are SCRAM-SHA-512=iterations=8192".
var scramDescribe = regexp.MustCompile(`SCRAM credential configs for user-principal '([^']+)' are (.*)`)

// describedUsers parses kafka-configs --describe --entity-type users into
// user -> its credentials as printed ("SCRAM-SHA-512=iterations=8192", ...).
func describedUsers(out string) map[string]string {
	users := map[string]string{}
	for _, m := range scramDescribe.FindAllStringSubmatch(out, -1) {
		users[m[1]] = strings.TrimSpace(m[2])
	}
	return users
}

// TestJavaSCRAMUsers: a broker with a SASL_SSL listener (SCRAM, its
// certificate from a test CA) and an admin user (StreamHouse's
// --bootstrap-user, Kafka's kafka-storage format --add-scram).
// kafka-configs.sh, as admin over SASL_SSL with SCRAM-SHA-512, creates
// alice with --add-config 'SCRAM-SHA-512=[iterations=8192,password=...]';
// --describe --entity-type users (all users, and alice alone) shows her
// mechanism and iteration count. Then kafka-clients 4.4.0 as alice
// (SASL_SSL, SCRAM-SHA-512) produces (idempotent, zstd) and a consumer reads
// the records back; franz-go on the PLAINTEXT listener reads the same. A
// wrong password, an unknown user and alice with SCRAM-SHA-256 (she has no
// such credential) are refused with SaslAuthenticationException.
func TestJavaSCRAMUsers(t *testing.T) {
	b := harness.StartSASL(t, harness.SASLOptions{TLS: true})
	adminCfg := javaSASLProps(t, b, "SCRAM-SHA-512", harness.SASLAdminUser, harness.SASLAdminPassword)
	const alicePW = "alice-Secret-1"
	configs := func(args ...string) string {
		t.Helper()
		return harness.Java(t, cliTimeout, "", nil, configCommand,
			append([]string{"--bootstrap-server", b.SASLAddr, "--command-config", adminCfg}, args...)...)
	}
	out := configs("--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password="+alicePW+"]",
		"--entity-type", "users", "--entity-name", "alice")
	if !strings.Contains(out, "Completed updating config for user alice.") {
		t.Errorf("kafka-configs --alter said %q", out)
	}
	waitSASLLogin(t, b, scram.Auth{User: "alice", Pass: alicePW}.AsSha512Mechanism())

	out = configs("--describe", "--entity-type", "users")
	users := describedUsers(out)
	if users["alice"] != "SCRAM-SHA-512=iterations=8192" {
		t.Errorf("kafka-configs --describe --entity-type users: alice has %q, want SCRAM-SHA-512=iterations=8192:\n%s", users["alice"], out)
	}
	if !strings.Contains(users[harness.SASLAdminUser], "SCRAM-SHA-512=iterations=4096") ||
		!strings.Contains(users[harness.SASLAdminUser], "SCRAM-SHA-256=iterations=4096") {
		t.Errorf("kafka-configs --describe --entity-type users: %s has %q, want SCRAM-SHA-256 and -512 with 4096 iterations:\n%s",
			harness.SASLAdminUser, users[harness.SASLAdminUser], out)
	}
	out = configs("--describe", "--entity-type", "users", "--entity-name", "alice")
	if got := describedUsers(out); len(got) != 1 || got["alice"] != "SCRAM-SHA-512=iterations=8192" {
		t.Errorf("kafka-configs --describe --entity-name alice printed %v, want alice: SCRAM-SHA-512=iterations=8192:\n%s", got, out)
	}

	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	aliceCfg := javaSASLProps(t, b, "SCRAM-SHA-512", "alice", alicePW)
	want := harness.Records(60, 3, "java-scram", time.Now())
	_, events := javaCompat(t, harness.JSONLines(want), "--config", aliceCfg, "produce", b.SASLAddr, topic, "zstd")
	harness.CheckAcks(t, events, want)
	got, _ := javaCompat(t, "", "--config", aliceCfg, "consume", b.SASLAddr, topic, "3", strconv.Itoa(len(want)))
	harness.CheckRecords(t, got, want, harness.Check{})
	harness.CheckRecords(t, harness.Consume(t, b, topic, len(want)), want, harness.Check{})

	for _, c := range []struct{ name, mechanism, user, password string }{
		{"wrong password", "SCRAM-SHA-512", "alice", "not-" + alicePW},
		{"unknown user", "SCRAM-SHA-512", "mallory", alicePW},
		{"mechanism without a credential", "SCRAM-SHA-256", "alice", alicePW},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := javaSASLProps(t, b, c.mechanism, c.user, c.password)
			_, events := javaCompat(t, "", "--config", cfg, "auth", b.SASLAddr)
			auth := harness.Events(events, "auth")
			if len(auth) != 1 || auth[0]["ok"] != false ||
				auth[0]["error"] != "org.apache.kafka.common.errors.SaslAuthenticationException" {
				t.Errorf("events %v, want one auth refused with SaslAuthenticationException", events)
			}
		})
	}
	_, events = javaCompat(t, "", "--config", aliceCfg, "auth", b.SASLAddr)
	if auth := harness.Events(events, "auth"); len(auth) != 1 || auth[0]["ok"] != true {
		t.Errorf("alice's auth: events %v, want ok", events)
	}
}

// TestConfluentSCRAM: confluent-kafka (librdkafka) over SASL_PLAINTEXT with
// SCRAM-SHA-256 as the admin user: an idempotent producer (lz4), then an
// assign consumer reads the records back; franz-go on the PLAINTEXT
// listener reads the same.
func TestConfluentSCRAM(t *testing.T) {
	b := harness.StartSASL(t, harness.SASLOptions{})
	cfg, err := json.Marshal(map[string]string{
		"security.protocol": b.Protocol,
		"sasl.mechanisms":   "SCRAM-SHA-256",
		"sasl.username":     harness.SASLAdminUser,
		"sasl.password":     harness.SASLAdminPassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "sasl.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	topic := harness.Topic(t)
	harness.CreateTopic(t, b, topic, 3)
	want := harness.Records(60, 3, "confluent-scram", time.Now())
	_, events := confluent.run(t, harness.JSONLines(want), "--config", cfgFile, "produce", b.SASLAddr, topic, "lz4")
	harness.CheckAcks(t, events, want)
	got, _ := confluent.run(t, "", "--config", cfgFile, "consume", b.SASLAddr, topic, "3", strconv.Itoa(len(want)))
	harness.CheckRecords(t, got, want, harness.Check{})
	harness.CheckRecords(t, harness.Consume(t, b, topic, len(want)), want, harness.Check{})
}
