package main

import (
	"context"
	"crypto/tls"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestLoadConfigSASL checks the SASL settings: listeners, mechanisms, the
// failed-authentication delay and the bootstrap user (whose password no
// error message repeats).
func TestLoadConfigSASL(t *testing.T) {
	pki := newTestPKI(t)
	certs := []string{"--tls-cert=" + pki.serverCert, "--tls-key=" + pki.serverKey}
	ok := []loadConfigCase{
		{name: "sasl listeners, bootstrap user from env",
			args: append([]string{"--kafka-listeners=PLAINTEXT://:9092,SASL_PLAINTEXT://:9095,SASL_SSL://:9094", "--grpc-tls=false"}, certs...),
			env:  map[string]string{"STREAMHOUSE_BOOTSTRAP_USER": "admin:pa:ss"},
			want: func(c *Config) {
				c.KafkaListeners = []KafkaListener{{Name: "PLAINTEXT", Addr: ":9092"},
					{Name: "SASL_PLAINTEXT", Addr: ":9095"}, {Name: "SASL_SSL", Addr: ":9094"}}
				c.TLSCert, c.TLSKey = pki.serverCert, pki.serverKey
				c.BootstrapUser = BootstrapUser{Name: "admin", Password: "pa:ss"}
			}},
		{name: "mechanisms and delay",
			args: []string{"--kafka-listeners=SASL_PLAINTEXT://:9095", "--sasl-mechanisms=scram-sha-256, PLAIN", "--failed-authentication-delay=0"},
			want: func(c *Config) {
				c.KafkaListeners = []KafkaListener{{Name: "SASL_PLAINTEXT", Addr: ":9095"}}
				c.SASLMechanisms = []string{"SCRAM-SHA-256", "PLAIN"}
				c.FailedAuthenticationDelay = 0
			}},
		{name: "delay as a duration", args: []string{"--failed-authentication-delay=1s"},
			want: func(c *Config) { c.FailedAuthenticationDelay = time.Second }},
	}
	runLoadConfigCases(t, ok)
	bad := []struct {
		name string
		args []string
		want []string
	}{
		{"bootstrap user without sasl listener", []string{"--bootstrap-user=admin:secret-pw"}, []string{"--bootstrap-user", "no listener uses SASL"}},
		{"bootstrap user without password", []string{"--kafka-listeners=SASL_PLAINTEXT://:1", "--bootstrap-user=admin:"}, []string{"--bootstrap-user", "NAME:PASSWORD"}},
		{"bootstrap user without colon", []string{"--kafka-listeners=SASL_PLAINTEXT://:1", "--bootstrap-user=secret-pw"}, []string{"--bootstrap-user", "(hidden)"}},
		{"unknown mechanism", []string{"--sasl-mechanisms=GSSAPI"}, []string{"--sasl-mechanisms", "unsupported mechanism"}},
		{"empty mechanism", []string{"--sasl-mechanisms=PLAIN,"}, []string{"--sasl-mechanisms"}},
		{"negative delay", []string{"--failed-authentication-delay=-5"}, []string{"--failed-authentication-delay"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, env(nil))
			if err == nil {
				t.Fatal("LoadConfig accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	if s := (BootstrapUser{Name: "admin", Password: "secret-pw"}).String(); s != "admin:xxxxx" {
		t.Errorf("BootstrapUser.String() = %q", s)
	}
}

// TestSASLListeners runs the broker binary with SASL_PLAINTEXT and
// SASL_SSL listeners and a bootstrap user: franz-go clients with the
// right password produce and consume, with a wrong one are refused; the
// bootstrap user creates another with kadm (AlterUserScramCredentials, as
// kafka-configs.sh does); kcat speaks SASL_SSL with SCRAM-SHA-512; no
// password reaches the log.
func TestSASLListeners(t *testing.T) {
	pki := newTestPKI(t)
	const adminPW = "admin-Pa55word"
	b := startBroker(t, map[string]string{"STREAMHOUSE_BOOTSTRAP_USER": "admin:" + adminPW},
		append(localArgs(t.TempDir()),
			"--kafka-listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
			"--tls-cert="+pki.serverCert, "--tls-key="+pki.serverKey, "--log-level=debug")...)
	b.ready(t)
	saslPlain, saslSSL := b.listenerAddr(t, "SASL_PLAINTEXT"), b.listenerAddr(t, "SASL_SSL")
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: pki.pool})
	admin := scram.Auth{User: "admin", Pass: adminPW}

	roundTrip(t, "over-sasl-plaintext", kgo.SeedBrokers(saslPlain), kgo.SASL(admin.AsSha256Mechanism()))
	roundTrip(t, "over-sasl-ssl", kgo.SeedBrokers(saslSSL), tlsOpt, kgo.SASL(admin.AsSha512Mechanism()))
	roundTrip(t, "over-sasl-plain-mech", kgo.SeedBrokers(saslSSL), tlsOpt, kgo.SASL(plain.Auth{User: "admin", Pass: adminPW}.AsMechanism()))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, opts := range map[string][]kgo.Opt{
		"wrong password": {kgo.SeedBrokers(saslSSL), tlsOpt, kgo.SASL(scram.Auth{User: "admin", Pass: "wrong-pw"}.AsSha512Mechanism())},
		"no sasl":        {kgo.SeedBrokers(saslPlain), kgo.RequestTimeoutOverhead(3 * time.Second)},
	} {
		cl, err := kgo.NewClient(append(opts, kgo.RetryTimeout(2*time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = kadm.NewClient(cl).ListTopics(ctx)
		cl.Close()
		if err == nil {
			t.Errorf("%s: listing topics succeeded", name)
		} else if name == "wrong password" && !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(saslSSL), tlsOpt, kgo.SASL(admin.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 8192, Password: "alice-pw"}})
	if err != nil || res["alice"].Err != nil {
		t.Fatalf("create alice: %v %v", err, res)
	}

	t.Run("kcat", func(t *testing.T) {
		kcat := kcatPath(t)
		args := []string{"-b", saslSSL, "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + pki.caFile,
			"-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice"}
		prod := exec.Command(kcat, append(args, "-X", "sasl.password=alice-pw", "-P", "-t", "kcat-sasl", "-p", "0")...)
		prod.Stdin = strings.NewReader("a\nb\nc\n")
		if out, err := prod.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P over SASL_SSL: %v\n%s", err, out)
		}
		out, err := exec.Command(kcat, append(args, "-X", "sasl.password=alice-pw",
			"-C", "-t", "kcat-sasl", "-p", "0", "-o", "beginning", "-e", "-f", "%o %s\n")...).Output()
		if err != nil {
			t.Fatalf("kcat -C over SASL_SSL: %v\n%s", err, out)
		}
		if got := string(out); got != "0 a\n1 b\n2 c\n" {
			t.Errorf("kcat consumed %q", got)
		}
		bad := exec.Command(kcat, append(args, "-X", "sasl.password=wrong-pw", "-L", "-m", "5")...)
		if out, err := bad.CombinedOutput(); err == nil {
			t.Errorf("kcat with a wrong password listed metadata:\n%s", out)
		}
	})
	b.stop(t)
	logs := b.out.String()
	for _, pw := range []string{adminPW, "alice-pw", "wrong-pw"} {
		if strings.Contains(logs, pw) {
			t.Errorf("the broker logged the password %q", pw)
		}
	}
	if !strings.Contains(logs, "principal=User:admin") && !strings.Contains(logs, `"principal":"User:admin"`) {
		t.Errorf("no debug log of principal User:admin")
	}
}
