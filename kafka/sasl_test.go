package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	fsasl "github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/streamhouse/streamhouse/kafka/sasl"
	"github.com/streamhouse/streamhouse/meta"
)

// saslBroker is a test broker with a SASL_PLAINTEXT and a SASL_SSL
// listener beside its PLAINTEXT one, a user alice (password
// alice-secret, both SCRAM mechanisms) and its metrics and logs at hand.
type saslBroker struct {
	*testBroker
	plainAddr, sslAddr string
	roots              *x509.CertPool
	reg                *prometheus.Registry
	logs               *syncBuffer
}

// String returns everything logged so far.
func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	alicePassword = "alice-secret"
	wrongPassword = "not-alice-secret"
)

func newSASLBroker(t *testing.T, tweak func(*Config)) *saslBroker {
	t.Helper()
	sb := &saslBroker{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	sb.testBroker = newTestBrokerLogging(t, func(c *Config) {
		c.Metrics = sb.reg
		c.FailedAuthenticationDelay = 20 * time.Millisecond
		if tweak != nil {
			tweak(c)
		}
	}, slog.NewTextHandler(sb.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for _, m := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
		c, err := sasl.NewCredential("alice", alicePassword, m, sasl.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if err := sb.meta.PutScramCredential(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	cert, roots := selfSignedCert(t)
	sb.roots = roots
	sb.plainAddr = sb.serve(Listener{Name: "SASL_PLAINTEXT"})
	sb.sslAddr = sb.serve(Listener{Name: "SASL_SSL",
		TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}})
	return sb
}

// serve serves one more listener until the broker closes.
func (sb *saslBroker) serve(ln Listener) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sb.t.Fatal(err)
	}
	go sb.srv.ServeListener(l, ln) //nolint:errcheck // returns nil at Close
	return l.Addr().String()
}

// selfSignedCert makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// saslClient is a franz-go client of addr authenticating with mech.
func (sb *saslBroker) saslClient(t *testing.T, addr string, mech fsasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(mech), kgo.RetryTimeout(2 * time.Second),
		kgo.RequestRetries(0)}, opts...)
	if addr == sb.sslAddr {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{RootCAs: sb.roots, MinVersion: tls.VersionTLS12}))
	}
	c, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (sb *saslBroker) authCount(mechanism, result string) float64 {
	var m dto.Metric
	if err := sb.srv.metrics.sasl.WithLabelValues(mechanism, result).Write(&m); err != nil {
		sb.t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestSASLClients produces and consumes with franz-go over SASL_PLAINTEXT
// and SASL_SSL with every mechanism, and checks a wrong password gets
// SASL_AUTHENTICATION_FAILED and nothing else.
func TestSASLClients(t *testing.T) {
	sb := newSASLBroker(t, nil)
	mechs := map[string]func(pass string) fsasl.Mechanism{
		sasl.Plain: func(p string) fsasl.Mechanism { return plain.Auth{User: "alice", Pass: p}.AsMechanism() },
		sasl.ScramSHA256: func(p string) fsasl.Mechanism {
			return scram.Auth{User: "alice", Pass: p}.AsSha256Mechanism()
		},
		sasl.ScramSHA512: func(p string) fsasl.Mechanism {
			return scram.Auth{User: "alice", Pass: p}.AsSha512Mechanism()
		},
	}
	for _, listener := range []string{"SASL_PLAINTEXT", "SASL_SSL"} {
		addr := sb.plainAddr
		if listener == "SASL_SSL" {
			addr = sb.sslAddr
		}
		for name, mech := range mechs {
			t.Run(listener+"/"+name, func(t *testing.T) {
				ctx := testCtx(t)
				topic := strings.ToLower(listener + "-" + name)
				sb.createTopic(topic, 1, nil)
				cl := sb.saslClient(t, addr, mech(alicePassword), kgo.DefaultProduceTopic(topic),
					kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				before := sb.authCount(name, "success")
				if err := cl.ProduceSync(ctx, kgo.StringRecord("hello "+name)).FirstErr(); err != nil {
					t.Fatalf("produce over %s with %s: %v", listener, name, err)
				}
				fs := cl.PollFetches(ctx)
				if err := fs.Err(); err != nil {
					t.Fatal(err)
				}
				if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "hello "+name {
					t.Fatalf("consumed %v", recs)
				}
				if got := sb.authCount(name, "success"); got <= before {
					t.Errorf("success count %v, want above %v", got, before)
				}

				bad := sb.saslClient(t, addr, mech(wrongPassword))
				failures := sb.authCount(name, "failure")
				err := bad.Ping(ctx)
				if !errors.Is(err, kerr.SaslAuthenticationFailed) {
					t.Fatalf("ping with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
				}
				if got := sb.authCount(name, "failure"); got <= failures {
					t.Errorf("failure count %v, want above %v", got, failures)
				}
			})
		}
	}
	if logs := sb.logs.String(); strings.Contains(logs, alicePassword) || strings.Contains(logs, wrongPassword) {
		t.Errorf("a password reached the logs:\n%s", logs)
	}
	if !strings.Contains(sb.logs.String(), "principal=User:alice") {
		t.Errorf("no debug log of the principal User:alice")
	}
}

// saslRaw dials a SASL listener for raw frames.
func (sb *saslBroker) saslRaw(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", sb.plainAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc}
}

func handshake(v int16, mech string) *kmsg.SASLHandshakeRequest {
	r := kmsg.NewPtrSASLHandshakeRequest()
	r.Version, r.Mechanism = v, mech
	return r
}

func authenticate(v int16, b []byte) *kmsg.SASLAuthenticateRequest {
	r := kmsg.NewPtrSASLAuthenticateRequest()
	r.Version, r.SASLAuthBytes = v, b
	return r
}

func metadataReq() *kmsg.MetadataRequest {
	r := kmsg.NewPtrMetadataRequest()
	r.Version = 12
	return r
}

// rawToken writes a raw SASL token (v0) and reads the raw answer.
func (c *rawConn) rawToken(token []byte) ([]byte, bool) {
	c.t.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
	c.write(append(b, token...))
	return c.readFrame()
}

func TestSASLRaw(t *testing.T) {
	sb := newSASLBroker(t, nil)
	plainToken := func(pass string) []byte { return []byte("\x00alice\x00" + pass) }
	t.Run("unauthenticated request closes", func(t *testing.T) {
		c := sb.saslRaw(t)
		c.write(frame(1, metadataReq()))
		c.expectClosed()
	})
	t.Run("api versions then unauthenticated request closes", func(t *testing.T) {
		c := sb.saslRaw(t)
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version = 3
		av.ClientSoftwareName, av.ClientSoftwareVersion = "raw", "1"
		if resp := c.roundTrip(1, av).(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
			t.Fatalf("ApiVersions: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		c.write(frame(2, metadataReq()))
		c.expectClosed()
	})
	t.Run("handshake v1 unsupported mechanism then retry", func(t *testing.T) {
		c := sb.saslRaw(t)
		resp := c.roundTrip(1, handshake(1, "GSSAPI")).(*kmsg.SASLHandshakeResponse)
		if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != 3 {
			t.Fatalf("GSSAPI handshake: %+v", resp)
		}
		if resp := c.roundTrip(2, handshake(1, sasl.Plain)).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
			t.Fatalf("PLAIN handshake: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp := c.roundTrip(3, authenticate(2, plainToken(alicePassword))).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != 0 {
			t.Fatalf("authenticate: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp := c.roundTrip(4, metadataReq()).(*kmsg.MetadataResponse); len(resp.Brokers) == 0 {
			t.Fatal("metadata after authentication has no brokers")
		}
		// Authenticated: both SASL APIs now get ILLEGAL_SASL_STATE.
		if resp := c.roundTrip(5, handshake(1, sasl.Plain)).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Errorf("handshake after authentication: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp := c.roundTrip(6, authenticate(1, plainToken(alicePassword))).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Errorf("authenticate after authentication: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
	})
	for _, v := range []int16{0, 1} {
		t.Run(fmt.Sprintf("authenticate v%d wrong password delayed and closed", v), func(t *testing.T) {
			c := sb.saslRaw(t)
			c.roundTrip(1, handshake(1, sasl.Plain))
			start := time.Now()
			resp := c.roundTrip(2, authenticate(v, plainToken(wrongPassword))).(*kmsg.SASLAuthenticateResponse)
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Fatalf("wrong password: %v", kerr.ErrorForCode(resp.ErrorCode))
			}
			if resp.ErrorMessage == nil || strings.Contains(*resp.ErrorMessage, wrongPassword) {
				t.Errorf("error message %v", resp.ErrorMessage)
			}
			if d := time.Since(start); d < 20*time.Millisecond {
				t.Errorf("failure answered after %v, want the 20ms delay", d)
			}
			c.expectClosed()
		})
	}
	t.Run("authenticate before handshake closes", func(t *testing.T) {
		c := sb.saslRaw(t)
		resp := c.roundTrip(1, authenticate(1, plainToken(alicePassword))).(*kmsg.SASLAuthenticateResponse)
		if resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("authenticate before handshake: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		c.expectClosed()
	})
	t.Run("handshake v0 plain raw token", func(t *testing.T) {
		c := sb.saslRaw(t)
		if resp := c.roundTrip(1, handshake(0, sasl.Plain)).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != 0 {
			t.Fatalf("handshake v0: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		answer, ok := c.rawToken(plainToken(alicePassword))
		if !ok || len(answer) != 0 {
			t.Fatalf("raw PLAIN answer %q (open %v), want empty", answer, ok)
		}
		if resp := c.roundTrip(2, metadataReq()).(*kmsg.MetadataResponse); len(resp.Brokers) == 0 {
			t.Fatal("metadata after raw authentication has no brokers")
		}
	})
	t.Run("handshake v0 scram raw tokens", func(t *testing.T) {
		c := sb.saslRaw(t)
		c.roundTrip(1, handshake(0, sasl.ScramSHA512))
		cli, msg, err := scram.Auth{User: "alice", Pass: alicePassword}.AsSha512Mechanism().Authenticate(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		for done := false; !done; {
			answer, ok := c.rawToken(msg)
			if !ok {
				t.Fatal("connection closed during the raw SCRAM exchange")
			}
			if done, msg, err = cli.Challenge(answer); err != nil {
				t.Fatal(err)
			}
		}
		if resp := c.roundTrip(2, metadataReq()).(*kmsg.MetadataResponse); len(resp.Brokers) == 0 {
			t.Fatal("metadata after raw SCRAM has no brokers")
		}
	})
	for name, token := range map[string][]byte{
		"wrong password": plainToken(wrongPassword),
		"empty":          {},
		"truncated":      []byte("\x00alice"),
		"garbage":        {0xff, 0x00, 0xfe, 0x00},
	} {
		t.Run("handshake v0 bad token "+name+" closes", func(t *testing.T) {
			c := sb.saslRaw(t)
			c.roundTrip(1, handshake(0, sasl.Plain))
			if answer, ok := c.rawToken(token); ok {
				t.Fatalf("bad raw token answered %q", answer)
			}
		})
	}
	t.Run("bad scram messages in authenticate", func(t *testing.T) {
		for _, msg := range [][]byte{nil, []byte("n,,"), []byte("p=tls,,n=alice,r=x"), []byte("n,,n=alice,r=x,ext=1"), {0xff}} {
			c := sb.saslRaw(t)
			c.roundTrip(1, handshake(1, sasl.ScramSHA256))
			resp := c.roundTrip(2, authenticate(1, msg)).(*kmsg.SASLAuthenticateResponse)
			if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code {
				t.Errorf("client-first %q: %v", msg, kerr.ErrorForCode(resp.ErrorCode))
			}
			c.expectClosed()
		}
	})
	t.Run("oversized frame before authentication closes", func(t *testing.T) {
		c := sb.saslRaw(t)
		big := make([]byte, 4)
		binary.BigEndian.PutUint32(big, preAuthMaxRequestBytes+1)
		c.write(big)
		c.expectClosed()
	})
	t.Run("plaintext listener refuses SASL", func(t *testing.T) {
		c := sb.raw()
		if resp := c.roundTrip(1, handshake(1, sasl.Plain)).(*kmsg.SASLHandshakeResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Errorf("handshake on PLAINTEXT: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		if resp := c.roundTrip(2, authenticate(1, plainToken(alicePassword))).(*kmsg.SASLAuthenticateResponse); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Errorf("authenticate on PLAINTEXT: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
	})
}

// TestSASLHandshakeDeadline checks an idle unauthenticated connection is
// closed at the handshake deadline.
func TestSASLHandshakeDeadline(t *testing.T) {
	sb := newSASLBroker(t, func(c *Config) { c.SASLHandshakeTimeout = 200 * time.Millisecond })
	c := sb.saslRaw(t)
	start := time.Now()
	c.expectClosed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
	// An authenticated connection outlives the deadline.
	cl := sb.saslClient(t, sb.plainAddr, plain.Auth{User: "alice", Pass: alicePassword}.AsMechanism())
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cl.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestSASLMechanismsConfig checks only the configured mechanisms are
// offered.
func TestSASLMechanismsConfig(t *testing.T) {
	sb := newSASLBroker(t, func(c *Config) { c.SASLMechanisms = []string{sasl.ScramSHA512} })
	c := sb.saslRaw(t)
	resp := c.roundTrip(1, handshake(1, sasl.Plain)).(*kmsg.SASLHandshakeResponse)
	if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || len(resp.SupportedMechanisms) != 1 || resp.SupportedMechanisms[0] != sasl.ScramSHA512 {
		t.Fatalf("PLAIN when only SCRAM-SHA-512 is on: %+v", resp)
	}
	cl := sb.saslClient(t, sb.plainAddr, plain.Auth{User: "alice", Pass: alicePassword}.AsMechanism())
	if err := cl.Ping(testCtx(t)); !errors.Is(err, kerr.UnsupportedSaslMechanism) {
		t.Fatalf("PLAIN client: %v", err)
	}
	if _, err := New(Config{Log: sb.log, Meta: sb.meta, SASLMechanisms: []string{"GSSAPI"}}); err == nil {
		t.Error("New accepted GSSAPI")
	}
}

// TestUserSCRAMCredentialsAdmin creates, describes, uses and deletes
// credentials with kadm, as kafka-configs.sh does with AdminClient.
func TestUserSCRAMCredentialsAdmin(t *testing.T) {
	sb := newSASLBroker(t, nil)
	ctx := testCtx(t)
	adm := kadm.NewClient(sb.client())
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "bob", Mechanism: kadm.ScramSha256, Iterations: 8192, Password: "bob-pw"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-pw"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res["bob"].Err != nil {
		t.Fatalf("alter bob: %+v", res)
	}
	desc, err := adm.DescribeUserSCRAMs(ctx, "bob", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if b := desc["bob"]; b.Err != nil || len(b.CredInfos) != 2 || b.CredInfos[0].Iterations != 8192 || b.CredInfos[1].Iterations != 4096 {
		t.Errorf("describe bob: %+v", b)
	}
	if n := desc["nobody"]; !errors.Is(n.Err, kerr.ResourceNotFound) {
		t.Errorf("describe nobody: %+v", n)
	}
	all, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all["alice"].Err != nil || all["bob"].Err != nil {
		t.Errorf("describe all: %+v", all)
	}
	cl := sb.saslClient(t, sb.sslAddr, scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism())
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("bob over SASL_SSL: %v", err)
	}
	cl = sb.saslClient(t, sb.plainAddr, plain.Auth{User: "bob", Pass: "bob-pw"}.AsMechanism())
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("bob with PLAIN: %v", err)
	}

	res, err = adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "bob", Mechanism: kadm.ScramSha256}, {User: "erin", Mechanism: kadm.ScramSha256}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res["bob"].Err != nil || !errors.Is(res["erin"].Err, kerr.ResourceNotFound) {
		t.Errorf("delete: bob %v, erin %v", res["bob"].Err, res["erin"].Err)
	}
	cl = sb.saslClient(t, sb.plainAddr, scram.Auth{User: "bob", Pass: "bob-pw"}.AsSha256Mechanism())
	if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("bob's deleted SCRAM-SHA-256: %v", err)
	}

	// Raw checks kadm does not make: duplicates and bad fields.
	c := sb.raw()
	req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	req.Deletions = []kmsg.AlterUserSCRAMCredentialsRequestDeletion{{Name: "alice", Mechanism: 1}, {Name: "", Mechanism: 1}}
	req.Upsertions = []kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		{Name: "alice", Mechanism: 1, Iterations: 4096, Salt: []byte("s"), SaltedPassword: make([]byte, 32)},
		{Name: "frank", Mechanism: 3, Iterations: 4096, Salt: []byte("s"), SaltedPassword: make([]byte, 32)},
		{Name: "gina", Mechanism: 2, Iterations: 4096, Salt: []byte("s"), SaltedPassword: make([]byte, 32)},
		{Name: "hank", Mechanism: 1, Iterations: 4096, SaltedPassword: make([]byte, 32)},
		{Name: "carol", Mechanism: 1, Iterations: 1000, Salt: []byte("s"), SaltedPassword: make([]byte, 32)},
		{Name: "dave", Mechanism: 1, Iterations: 100000, Salt: []byte("s"), SaltedPassword: make([]byte, 32)},
	}
	aresp := c.roundTrip(1, req).(*kmsg.AlterUserSCRAMCredentialsResponse)
	codes := map[string]int16{}
	for _, r := range aresp.Results {
		codes[r.User] = r.ErrorCode
	}
	wantCodes := map[string]int16{"alice": kerr.DuplicateResource.Code, "": kerr.UnacceptableCredential.Code,
		"frank": kerr.UnsupportedSaslMechanism.Code, "gina": kerr.UnacceptableCredential.Code, "hank": kerr.UnacceptableCredential.Code,
		"carol": kerr.UnacceptableCredential.Code, "dave": kerr.UnacceptableCredential.Code}
	for u, w := range wantCodes {
		if codes[u] != w {
			t.Errorf("alter %q: %v, want %v", u, kerr.ErrorForCode(codes[u]), kerr.ErrorForCode(w))
		}
	}
	if _, found, _ := sb.meta.GetScramCredential(ctx, "alice", meta.ScramSHA256); !found {
		t.Error("a refused request deleted alice's credential")
	}
	dreq := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
	dreq.Users = []kmsg.DescribeUserSCRAMCredentialsRequestUser{{Name: "alice"}, {Name: "alice"}}
	dresp := c.roundTrip(2, dreq).(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if len(dresp.Results) != 1 || dresp.Results[0].ErrorCode != kerr.DuplicateResource.Code {
		t.Errorf("describe alice twice: %+v", dresp.Results)
	}
	qreq := kmsg.NewPtrDescribeClientQuotasRequest()
	qreq.Version = 1
	if qresp := c.roundTrip(3, qreq).(*kmsg.DescribeClientQuotasResponse); qresp.ErrorCode != 0 || len(qresp.Entries) != 0 {
		t.Errorf("describe client quotas: %+v", qresp)
	}
}
