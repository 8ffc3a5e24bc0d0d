package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The user every broker StartSASL starts has, with SCRAM-SHA-256 and
// SCRAM-SHA-512 credentials (4096 iterations): StreamHouse's
// --bootstrap-user, Apache Kafka's kafka-storage format --add-scram.
const (
	SASLAdminUser     = "admin"
	SASLAdminPassword = "admin-secret"
)

// SASLOptions says which SASL listener StartSASL adds.
type SASLOptions struct {
	// TLS makes it SASL_SSL, with a certificate for 127.0.0.1 from a CA
	// the harness makes (SASLBroker.CAFile); else it is SASL_PLAINTEXT.
	TLS bool
}

// SASLBroker is a broker with two client listeners: PLAINTEXT (Bootstrap)
// and a SASL one offering (at least) SCRAM-SHA-256 and SCRAM-SHA-512, with
// the admin user SASLAdminUser.
type SASLBroker struct {
	Broker
	// SASLAddr is the host:port of the SASL listener.
	SASLAddr string
	// Protocol is its security protocol: SASL_PLAINTEXT or SASL_SSL.
	Protocol string
	// CAFile is the PEM certificate of the CA that signed the listener's
	// certificate (SASL_SSL only).
	CAFile string
}

// saslListener is what the start functions need of a SASL listener.
type saslListener struct {
	protocol, addr    string
	dir               string // where the certificates go
	certFile, keyFile string // PEM, the key unencrypted PKCS#8 (SASL_SSL)
	keystore          string // the key then the certificate, for Kafka's PEM keystore
	caFile            string
}

// StartSASL starts a fresh broker of the selected kind with a SASL listener
// besides its PLAINTEXT one (never the shared Apache Kafka: the other tests'
// brokers stay as they are), stopped when t ends. It skips t as Start does
// (Requirements), and with COMPAT_BOOTSTRAP, whose broker has no known SASL
// listener.
func StartSASL(t testing.TB, opts SASLOptions) *SASLBroker {
	t.Helper()
	kind := SelectedKind()
	SkipUnsupported(t, kind)
	if os.Getenv("COMPAT_BOOTSTRAP") != "" {
		t.Skip("needs a broker with a SASL listener that the harness starts; COMPAT_BOOTSTRAP is set")
	}
	b, err := StartSASLBroker(kind, t.TempDir(), opts)
	if err != nil {
		t.Fatalf("start %s with a SASL listener: %v", kind, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log tail:\n%s", kind, b.LogTail())
		}
		if err := b.Stop(); err != nil {
			t.Errorf("stop %s: %v", kind, err)
		}
	})
	return b
}

// StartSASLBroker starts a broker of kind with its data under dir, as
// StartSASL does, for a caller without a testing.TB (cmd/compatbroker).
func StartSASLBroker(kind Kind, dir string, opts SASLOptions) (*SASLBroker, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	l := &saslListener{protocol: "SASL_PLAINTEXT", addr: fmt.Sprintf("127.0.0.1:%d", port), dir: dir}
	if opts.TLS {
		l.protocol = "SASL_SSL"
		if err := writeTestPKI(l); err != nil {
			return nil, fmt.Errorf("certificates: %w", err)
		}
	}
	var b Broker
	if kind == ApacheKafka {
		b, err = startKafka(dir, l)
	} else {
		b, err = startStreamHouse(dir, l)
	}
	if err != nil {
		return nil, err
	}
	return &SASLBroker{Broker: b, SASLAddr: l.addr, Protocol: l.protocol, CAFile: l.caFile}, nil
}

// kafkaSASLProps are the server.properties lines of Apache Kafka's SASL
// listener: SCRAM-SHA-256 and SCRAM-SHA-512 (the credentials are in the
// metadata log, so the login module needs no options) and, for SASL_SSL,
// a PEM keystore.
func kafkaSASLProps(l *saslListener) string {
	name := strings.ToLower(l.protocol)
	var b strings.Builder
	b.WriteString("sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256\n")
	for _, m := range []string{"scram-sha-256", "scram-sha-512"} {
		fmt.Fprintf(&b, "listener.name.%s.%s.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;\n", name, m)
	}
	if l.protocol == "SASL_SSL" {
		fmt.Fprintf(&b, "listener.name.%s.ssl.keystore.type=PEM\nlistener.name.%s.ssl.keystore.location=%s\n", name, name, l.keystore)
	}
	return b.String()
}

// writeTestPKI writes a CA (ca.pem) and a certificate for 127.0.0.1 that
// it signed (server.pem, server-key.pem, and both in keystore.pem) into
// l.dir. They are valid for a day.
func writeTestPKI(l *saslListener) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "compat-tests CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	l.caFile = filepath.Join(l.dir, "ca.pem")
	l.certFile = filepath.Join(l.dir, "server.pem")
	l.keyFile = filepath.Join(l.dir, "server-key.pem")
	l.keystore = filepath.Join(l.dir, "keystore.pem")
	for path, data := range map[string][]byte{
		l.caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		l.certFile: certPEM,
		l.keyFile:  keyPEM,
		l.keystore: append(append([]byte{}, keyPEM...), certPEM...),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
