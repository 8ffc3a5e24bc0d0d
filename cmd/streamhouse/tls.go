package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// KafkaListener is one entry of --kafka-listeners: a name, which is also
// its security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL), the
// address it listens on and the address it advertises (empty: its own).
type KafkaListener struct {
	Name       string
	Addr       string
	Advertised string
}

// Security protocols of Kafka listeners.
const (
	protoPlaintext     = "PLAINTEXT"
	protoSSL           = "SSL"
	protoSASLPlaintext = "SASL_PLAINTEXT"
	protoSASLSSL       = "SASL_SSL"
)

// usesTLS reports whether a listener's security protocol is over TLS.
func usesTLS(proto string) bool { return proto == protoSSL || proto == protoSASLSSL }

// usesSASL reports whether a listener's security protocol authenticates
// with SASL.
func usesSASL(proto string) bool { return proto == protoSASLPlaintext || proto == protoSASLSSL }

// parseNameAddr parses one NAME://HOST:PORT entry; the name is upper-cased.
func parseNameAddr(entry string) (name, addr string, err error) {
	name, addr, ok := strings.Cut(strings.TrimSpace(entry), "://")
	if !ok || name == "" {
		return "", "", fmt.Errorf("%q: want NAME://HOST:PORT, e.g. PLAINTEXT://:9092", entry)
	}
	if err := checkAddr(addr); err != nil {
		return "", "", fmt.Errorf("%q: %w", entry, err)
	}
	return strings.ToUpper(name), addr, nil
}

// parseListeners parses --kafka-listeners: NAME://HOST:PORT entries, comma
// separated, with unique names that are supported security protocols.
func parseListeners(v string) ([]KafkaListener, error) {
	var out []KafkaListener
	seen := make(map[string]bool)
	for _, entry := range strings.Split(v, ",") {
		name, addr, err := parseNameAddr(entry)
		if err != nil {
			return nil, err
		}
		switch name {
		case protoPlaintext, protoSSL, protoSASLPlaintext, protoSASLSSL:
		default:
			return nil, fmt.Errorf("unknown security protocol %q (want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("listener %s given twice", name)
		}
		seen[name] = true
		out = append(out, KafkaListener{Name: name, Addr: addr})
	}
	return out, nil
}

// setAdvertisedListeners parses --kafka-advertised-listeners into the
// listeners it names; "" advertises every listener's own address.
func setAdvertisedListeners(ls []KafkaListener, v string) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	for _, entry := range strings.Split(v, ",") {
		name, addr, err := parseNameAddr(entry)
		if err != nil {
			return err
		}
		i := 0
		for i < len(ls) && ls[i].Name != name {
			i++
		}
		if i == len(ls) {
			return fmt.Errorf("%s is not a listener of --kafka-listeners", name)
		}
		if ls[i].Advertised != "" {
			return fmt.Errorf("listener %s given twice", name)
		}
		ls[i].Advertised = addr
	}
	return nil
}

// checkTLS checks the TLS settings against the listeners and loads the
// files once, so that a missing or bad file stops the start.
func (c *Config) checkTLS(names map[string]string) error {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return fmt.Errorf("%s and %s go together: set both or neither", names["tls-cert"], names["tls-key"])
	}
	if c.TLSCert == "" {
		for _, l := range c.KafkaListeners {
			if usesTLS(l.Name) {
				return fmt.Errorf("%s has an %s listener but no certificate: set --tls-cert and --tls-key (STREAMHOUSE_TLS_CERT, STREAMHOUSE_TLS_KEY)",
					names["kafka-listeners"], l.Name)
			}
		}
		if c.GRPCTLS {
			return fmt.Errorf("%s needs --tls-cert and --tls-key", names["grpc-tls"])
		}
		if c.TLSClientCA != "" {
			return fmt.Errorf("%s needs --tls-cert and --tls-key", names["tls-client-ca"])
		}
		return nil
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey); err != nil {
		return &SettingError{Name: names["tls-cert"], Value: c.TLSCert, Err: err}
	}
	if c.TLSClientCA != "" {
		if _, err := loadCertPool(c.TLSClientCA); err != nil {
			return &SettingError{Name: names["tls-client-ca"], Value: c.TLSClientCA, Err: err}
		}
	}
	return nil
}

// loadCertPool reads a PEM file of CA certificates.
func loadCertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate in the file")
	}
	return pool, nil
}

// serverTLS returns the TLS configuration of SSL listeners and the gRPC
// API: TLS 1.2 or later, the certificate read through a reloader, and
// client certificates required and verified when TLSClientCA is set. Nil
// when no certificate is configured.
func (c *Config) serverTLS() (*tls.Config, error) {
	if c.TLSCert == "" {
		return nil, nil
	}
	r := &certReloader{certFile: c.TLSCert, keyFile: c.TLSKey}
	if _, err := r.GetCertificate(nil); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
	if c.TLSClientCA != "" {
		pool, err := loadCertPool(c.TLSClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls client CA %s: %w", c.TLSClientCA, err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// certReloader serves a certificate and key from PEM files and reads them
// again when either file's modification time or size changes, checked at
// each handshake (a stat of two files; no goroutine). A pair that fails to
// load (say, the certificate replaced but not yet the key) keeps the
// previous one in service until both load.
type certReloader struct {
	certFile, keyFile string

	// mu guards the fields below.
	mu      sync.Mutex
	cert    *tls.Certificate
	certMod fileStamp
	keyMod  fileStamp
}

// fileStamp is what tells a changed file: modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs, cerr := stampOf(r.certFile)
	ks, kerr := stampOf(r.keyFile)
	if cerr == nil && kerr == nil && r.cert != nil && cs == r.certMod && ks == r.keyMod {
		return r.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		if r.cert != nil {
			return r.cert, nil
		}
		return nil, fmt.Errorf("load tls certificate %s: %w", r.certFile, err)
	}
	r.cert, r.certMod, r.keyMod = &cert, cs, ks
	return r.cert, nil
}
