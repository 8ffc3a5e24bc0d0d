package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	be "encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	streamhousepb "github.com/streamhouse/streamhouse/proto"
)

// testPKI is a CA with the files the TLS tests hand the broker and clients.
type testPKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	pool   *x509.CertPool
	// serverCert/serverKey are the broker's files; clientCert/clientKey
	// a client certificate for CN=alice.
	serverCert, serverKey string
	clientCert, clientKey string
	client                tls.Certificate
}

// newTestPKI writes a CA, a server certificate for 127.0.0.1 (serial 1)
// and a client certificate (CN=alice) into a temporary directory.
func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(100), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caKey, p.caFile = key, filepath.Join(p.dir, "ca.pem")
	writePEM(t, p.caFile, "CERTIFICATE", der)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	p.serverCert, p.serverKey = filepath.Join(p.dir, "server.pem"), filepath.Join(p.dir, "server-key.pem")
	p.issueServer(t, 1)
	p.clientCert, p.clientKey = filepath.Join(p.dir, "client.pem"), filepath.Join(p.dir, "client-key.pem")
	p.issue(t, &x509.Certificate{SerialNumber: big.NewInt(50), Subject: pkix.Name{CommonName: "alice"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, p.clientCert, p.clientKey)
	if p.client, err = tls.LoadX509KeyPair(p.clientCert, p.clientKey); err != nil {
		t.Fatal(err)
	}
	return p
}

// issueServer (re)writes the server certificate and key with serial,
// each file replaced by a rename.
func (p *testPKI) issueServer(t *testing.T, serial int64) {
	t.Helper()
	p.issue(t, &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		p.serverCert, p.serverKey)
}

func (p *testPKI) issue(t *testing.T, tmpl *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	writePEM(t, certFile, "CERTIFICATE", der)
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// writePEM writes one PEM block to path through a temporary file and a
// rename, as a certificate manager would.
func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// tlsArgs are localArgs with a PLAINTEXT and an SSL listener and the
// test PKI's server certificate.
func tlsArgs(t *testing.T, p *testPKI, extra ...string) []string {
	return append(append(localArgs(t.TempDir()),
		"--kafka-listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
		"--tls-cert="+p.serverCert, "--tls-key="+p.serverKey), extra...)
}

// listenerAddr returns the address the broker's Kafka listener name serves.
func (p *brokerProc) listenerAddr(t *testing.T, name string) string {
	t.Helper()
	var rec logRecord
	waitFor(t, startTimeout, "the "+name+" listener's log line", func() (bool, string) {
		var ok bool
		rec, ok = findLog(p.out.String(), "kafka listener serving", "listener", name)
		return ok, p.out.String()
	})
	return rec.str("addr")
}

// roundTrip produces n records to topic with a client built from opts and
// consumes them back with another. The records come to more than 16 KiB,
// so that the fetch sends them as a segment file region (kafka's
// regionMinBytes), which a TLS connection must copy through TLS rather
// than sendfile.
func roundTrip(t *testing.T, topic string, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(append([]kgo.Opt{kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 20
	for i := 0; i < n; i++ {
		if err := prod.ProduceSync(ctx, kgo.StringRecord(tlsTestValue(i))).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", topic, err)
		}
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []string
	for len(got) < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: got %d of %d records: %v", topic, len(got), n, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != tlsTestValue(i) {
			t.Fatalf("record %d = %.20q...", i, v)
		}
	}
}

// tlsTestValue is the value of roundTrip's record i: 2 KiB.
func tlsTestValue(i int) string { return fmt.Sprintf("v%04d-%s", i, strings.Repeat("x", 2042)) }

// advertisedPort asks the broker at seed (through opts) for Metadata and
// returns the port it advertises.
func advertisedPort(t *testing.T, opts ...kgo.Opt) int32 {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Brokers[0].Port
}

func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return int32(n)
}

// TestTLSListeners serves a PLAINTEXT and an SSL listener: franz-go
// produces and consumes over both, each connection is told its own
// listener's address, a plaintext client on the SSL port is closed without
// harm, and the gRPC API (same certificate) answers over TLS, to a Go
// client and to streamctl --tls --ca; kcat runs over SSL when installed.
func TestTLSListeners(t *testing.T) {
	pki := newTestPKI(t)
	b := startBroker(t, nil, tlsArgs(t, pki)...)
	b.ready(t)
	plain, ssl := b.listenerAddr(t, "PLAINTEXT"), b.listenerAddr(t, "SSL")
	grpcAddr := b.listenAddr(t, "grpc")
	tlsOpt := kgo.DialTLSConfig(&tls.Config{RootCAs: pki.pool})

	roundTrip(t, "over-ssl", kgo.SeedBrokers(ssl), tlsOpt)
	roundTrip(t, "over-plaintext", kgo.SeedBrokers(plain))
	if got, want := advertisedPort(t, kgo.SeedBrokers(ssl), tlsOpt), portOf(t, ssl); got != want {
		t.Errorf("SSL listener advertises port %d, want %d", got, want)
	}
	if got, want := advertisedPort(t, kgo.SeedBrokers(plain)), portOf(t, plain); got != want {
		t.Errorf("PLAINTEXT listener advertises port %d, want %d", got, want)
	}

	t.Run("plaintext client on the SSL port", func(t *testing.T) {
		c, err := net.Dial("tcp", ssl)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// An ApiVersions v0 request frame, as a plaintext client sends it.
		req := []byte{0, 18, 0, 0, 0, 0, 0, 1, 0, 0}
		frame := be.BigEndian.AppendUint32(nil, uint32(len(req)))
		if _, err := c.Write(append(frame, req...)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("read: %v (want the broker to close the connection)", err)
		}
		if len(got) >= 4 && int(be.BigEndian.Uint32(got)) == len(got)-4 {
			t.Fatalf("got a Kafka response on the SSL port: %x", got)
		}
		roundTrip(t, "after-plaintext-probe", kgo.SeedBrokers(ssl), tlsOpt)
	})

	t.Run("grpc over tls", func(t *testing.T) {
		conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pki.pool})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health over TLS: %v %v", h, err)
		}
		topics, err := streamhousepb.NewStreamHouseClient(conn).ListTopics(ctx, &streamhousepb.ListTopicsRequest{})
		if err != nil {
			t.Fatalf("ListTopics over TLS: %v", err)
		}
		if !strings.Contains(topics.String(), "over-ssl") {
			t.Errorf("ListTopics lacks over-ssl: %v", topics)
		}
	})

	t.Run("streamctl", func(t *testing.T) {
		if out := runStreamctl(t, grpcAddr, "--tls", "--ca", pki.caFile, "topic", "list"); !strings.Contains(out, "over-ssl") {
			t.Errorf("streamctl --tls --ca topic list = %q", out)
		}
		cmd := exec.Command(streamctlBinary(t), "-s", grpcAddr, "--timeout=10s", "topic", "list")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("streamctl without --tls against the TLS gRPC API succeeded:\n%s", out)
		}
	})

	t.Run("kcat", func(t *testing.T) {
		kcat := kcatPath(t)
		prod := exec.Command(kcat, "-b", ssl, "-X", "security.protocol=SSL", "-X", "ssl.ca.location="+pki.caFile,
			"-P", "-t", "kcat-ssl", "-p", "0")
		prod.Stdin = strings.NewReader("a\nb\nc\n")
		if out, err := prod.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P over SSL: %v\n%s", err, out)
		}
		out, err := exec.Command(kcat, "-b", ssl, "-X", "security.protocol=SSL", "-X", "ssl.ca.location="+pki.caFile,
			"-C", "-t", "kcat-ssl", "-p", "0", "-o", "beginning", "-e", "-f", "%o %s\n").Output()
		if err != nil {
			t.Fatalf("kcat -C over SSL: %v\n%s", err, out)
		}
		if got := string(out); got != "0 a\n1 b\n2 c\n" {
			t.Errorf("kcat consumed %q", got)
		}
	})
	b.stop(t)
}

// TestTLSMutual requires client certificates: a client without one is
// refused, one with a certificate from the client CA produces and
// consumes, on the Kafka SSL listener and on the gRPC API.
func TestTLSMutual(t *testing.T) {
	pki := newTestPKI(t)
	b := startBroker(t, nil, tlsArgs(t, pki, "--tls-client-ca="+pki.caFile, "--log-level=debug")...)
	b.ready(t)
	ssl, grpcAddr := b.listenerAddr(t, "SSL"), b.listenAddr(t, "grpc")

	c, err := tls.Dial("tcp", ssl, &tls.Config{RootCAs: pki.pool})
	if err == nil {
		// TLS 1.3 clients finish before the server checks them; the
		// refusal arrives as an alert on the first read.
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("handshake without a client certificate: err = %v, want a certificate alert", err)
	}

	roundTrip(t, "mtls", kgo.SeedBrokers(ssl),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}))
	waitFor(t, startTimeout, "the principal logged", func() (bool, string) {
		_, ok := findLog(b.out.String(), "kafka tls connection", "principal", "User:alice")
		return ok, b.out.String()
	})

	if out := runStreamctl(t, grpcAddr, "--ca", pki.caFile, "--cert", pki.clientCert, "--cert-key", pki.clientKey,
		"topic", "list"); !strings.Contains(out, "mtls") {
		t.Errorf("streamctl with a client certificate: topic list = %q", out)
	}
	cmd := exec.Command(streamctlBinary(t), "-s", grpcAddr, "--ca", pki.caFile, "--timeout=10s", "topic", "list")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("streamctl without a client certificate succeeded:\n%s", out)
	}
	b.stop(t)
}

// TestTLSCertRotation replaces the certificate files under a running
// broker: the next connection is served the new certificate.
func TestTLSCertRotation(t *testing.T) {
	pki := newTestPKI(t)
	b := startBroker(t, nil, tlsArgs(t, pki)...)
	b.ready(t)
	ssl, grpcAddr := b.listenerAddr(t, "SSL"), b.listenAddr(t, "grpc")
	serial := func(addr string, cfg *tls.Config) int64 {
		t.Helper()
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	cfg := &tls.Config{RootCAs: pki.pool}
	grpcCfg := &tls.Config{RootCAs: pki.pool, NextProtos: []string{"h2"}}
	if got := serial(ssl, cfg); got != 1 {
		t.Fatalf("served serial %d, want 1", got)
	}
	pki.issueServer(t, 2)
	if got := serial(ssl, cfg); got != 2 {
		t.Errorf("Kafka SSL listener: served serial %d after rotation, want 2", got)
	}
	if got := serial(grpcAddr, grpcCfg); got != 2 {
		t.Errorf("gRPC: served serial %d after rotation, want 2", got)
	}
	roundTrip(t, "rotated", kgo.SeedBrokers(ssl), kgo.DialTLSConfig(cfg))
	b.stop(t)
}

// TestLoadConfigListenersAndTLS covers --kafka-listeners,
// --kafka-advertised-listeners and the TLS settings: values that load and
// values refused at start.
func TestLoadConfigListenersAndTLS(t *testing.T) {
	pki := newTestPKI(t)
	certs := []string{"--tls-cert=" + pki.serverCert, "--tls-key=" + pki.serverKey}
	ok := []loadConfigCase{
		{name: "kafka-addr is one plaintext listener", args: []string{"--kafka-addr=127.0.0.1:1"},
			want: func(c *Config) {
				c.KafkaAddr, c.KafkaListeners = "127.0.0.1:1", []KafkaListener{{Name: "PLAINTEXT", Addr: "127.0.0.1:1"}}
			}},
		{name: "kafka-advertised-addr goes to the first listener", args: []string{"--kafka-advertised-addr=h:9"},
			want: func(c *Config) {
				c.KafkaAdvertisedAddr, c.KafkaListeners = "h:9", []KafkaListener{{Name: "PLAINTEXT", Addr: ":9092", Advertised: "h:9"}}
			}},
		{name: "listeners and advertised from env, lower case names",
			args: certs,
			env: map[string]string{"STREAMHOUSE_KAFKA_LISTENERS": "plaintext://:9092,ssl://127.0.0.1:9093",
				"STREAMHOUSE_KAFKA_ADVERTISED_LISTENERS": "SSL://kafka.example:19093"},
			want: func(c *Config) {
				c.KafkaListeners = []KafkaListener{{Name: "PLAINTEXT", Addr: ":9092"},
					{Name: "SSL", Addr: "127.0.0.1:9093", Advertised: "kafka.example:19093"}}
				c.TLSCert, c.TLSKey, c.GRPCTLS = pki.serverCert, pki.serverKey, true
			}},
		{name: "mtls, grpc kept plaintext",
			args: append([]string{"--kafka-listeners=SSL://:9093", "--tls-client-ca=" + pki.caFile, "--grpc-tls=false"}, certs...),
			want: func(c *Config) {
				c.KafkaListeners = []KafkaListener{{Name: "SSL", Addr: ":9093"}}
				c.TLSCert, c.TLSKey, c.TLSClientCA = pki.serverCert, pki.serverKey, pki.caFile
			}},
	}
	runLoadConfigCases(t, ok)

	missing := filepath.Join(t.TempDir(), "nope.pem")
	bad := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown protocol", []string{"--kafka-listeners=HTTP://:80"}, []string{"--kafka-listeners", "unknown security protocol"}},
		{"sasl ssl without cert", []string{"--kafka-listeners=SASL_SSL://:9094"}, []string{"SASL_SSL listener but no certificate"}},
		{"no scheme", []string{"--kafka-listeners=:9092"}, []string{"NAME://HOST:PORT"}},
		{"bad port", []string{"--kafka-listeners=SSL://:port"}, []string{"--kafka-listeners"}},
		{"duplicate name", []string{"--kafka-listeners=SSL://:1,SSL://:2"}, []string{"given twice"}},
		{"advertised for no listener", []string{"--kafka-advertised-listeners=SSL://h:1"}, []string{"not a listener"}},
		{"ssl without cert", []string{"--kafka-listeners=SSL://:9093"}, []string{"SSL listener but no certificate", "--tls-cert"}},
		{"cert without key", []string{"--tls-cert=" + pki.serverCert}, []string{"--tls-key"}},
		{"grpc tls without cert", []string{"--grpc-tls"}, []string{"--grpc-tls needs --tls-cert"}},
		{"client ca without cert", []string{"--tls-client-ca=" + pki.caFile}, []string{"--tls-client-ca needs"}},
		{"missing cert file", []string{"--tls-cert=" + missing, "--tls-key=" + pki.serverKey}, []string{"--tls-cert", "no such file"}},
		{"key of another cert", []string{"--tls-cert=" + pki.serverCert, "--tls-key=" + pki.clientKey}, []string{"--tls-cert", "private key does not match"}},
		{"missing client ca", append([]string{"--tls-client-ca=" + missing}, certs...), []string{"--tls-client-ca", "no such file"}},
		{"client ca not pem", append([]string{"--tls-client-ca=" + pki.serverKey}, certs...), []string{"--tls-client-ca", "no PEM certificate"}},
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
		})
	}
}
