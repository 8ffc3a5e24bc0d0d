// Command compatbroker starts the broker the compatibility harness would
// (COMPAT_BROKER=streamhouse|kafka), prints "BOOTSTRAP=host:port" once it
// answers, and runs until SIGINT/SIGTERM or -max-lifetime, then stops it.
// With -sasl it also has a SASL_PLAINTEXT listener (SCRAM-SHA-256 and
// SCRAM-SHA-512) with the harness's admin user, and prints
// "SASL_BOOTSTRAP=host:port" and "SASL_USER=name:password" after BOOTSTRAP.
// franz-suite.sh uses it; it is handy for poking at a client by hand too.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/streamhouse/streamhouse/compat-tests/harness"
)

func main() {
	maxLife := flag.Duration("max-lifetime", 30*time.Minute, "stop the broker after this long at the latest")
	withSASL := flag.Bool("sasl", false, "add a SASL_PLAINTEXT listener with an admin user (SCRAM-SHA-256 and -512)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "compatbroker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	var b harness.Broker
	var saslAddr string
	switch {
	case *withSASL:
		var sb *harness.SASLBroker
		sb, err = harness.StartSASLBroker(harness.SelectedKind(), dir, harness.SASLOptions{})
		if err == nil {
			b, saslAddr = sb, sb.SASLAddr
		}
	case harness.SelectedKind() == harness.ApacheKafka:
		b, err = harness.StartKafka(dir)
	default:
		b, err = harness.StartStreamHouse(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "compatbroker:", err)
		os.Exit(1)
	}
	fmt.Printf("BOOTSTRAP=%s\n", b.Bootstrap())
	if saslAddr != "" {
		fmt.Printf("SASL_BOOTSTRAP=%s\nSASL_USER=%s:%s\n", saslAddr, harness.SASLAdminUser, harness.SASLAdminPassword)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "compatbroker: %v: stopping\n", s)
	case <-time.After(*maxLife):
		fmt.Fprintf(os.Stderr, "compatbroker: %v passed: stopping\n", *maxLife)
	}
	if err := b.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "compatbroker: stop:", err)
		os.Exit(1)
	}
}
