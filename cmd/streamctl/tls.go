package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strconv"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// tlsFromEnv applies $STREAMHOUSE_TLS ("" leaves TLS off).
func (a *app) tlsFromEnv(v string) error {
	if v == "" {
		return nil
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		return usagef("", "$%s=%q: want true or false", envTLS, v)
	}
	a.useTLS = on
	return nil
}

// transportCredentials returns TLS credentials when --tls, --ca or --cert
// is given (TLS 1.2 or later; the server's certificate checked against
// --ca, else the system's roots; --cert and --cert-key sent for mutual TLS),
// else plaintext ones.
func (a *app) transportCredentials() (credentials.TransportCredentials, error) {
	if !a.useTLS && a.ca == "" && a.cert == "" {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.ca != "" {
		pem, err := os.ReadFile(a.ca)
		if err != nil {
			return nil, usagef("", "--ca: %v", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, usagef("", "--ca %s: no PEM certificate in the file", a.ca)
		}
	}
	if (a.cert == "") != (a.key == "") {
		return nil, usagef("", "--cert and --cert-key go together")
	}
	if a.cert != "" {
		cert, err := tls.LoadX509KeyPair(a.cert, a.key)
		if err != nil {
			return nil, usagef("", "--cert/--cert-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}
