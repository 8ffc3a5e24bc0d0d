package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// probeTimeout bounds the TCP dial that explains a failed connection.
const probeTimeout = 3 * time.Second

// unreachable explains a call that failed with UNAVAILABLE because the
// connection failed: the address, the cause and a hint. It dials the
// address itself, since gRPC's message buries the cause in transport
// detail. It returns false, printing nothing, when the server answered
// UNAVAILABLE itself (a broker shutting down), which is no connection
// problem.
func (a *app) unreachable(grpcMsg string) bool {
	connFailure := strings.HasPrefix(grpcMsg, "connection error") || strings.Contains(grpcMsg, "transport") ||
		strings.Contains(grpcMsg, "connection closed") || strings.Contains(grpcMsg, "server preface") ||
		strings.Contains(grpcMsg, "name resolver")
	if !connFailure {
		return false
	}
	cause, hint := a.diagnose(grpcMsg)
	fmt.Fprintf(a.errOut, "Error: cannot reach StreamHouse at %s: %s\n", a.server, cause)
	fmt.Fprintf(a.errOut, "Hint: %s\n      %s\n", hint, a.addressHint())
	return true
}

// diagnose returns the cause of a failed connection and what to do.
func (a *app) diagnose(grpcMsg string) (cause, hint string) {
	if strings.Contains(a.server, "://") || strings.HasPrefix(a.server, "unix:") {
		return grpcDesc(grpcMsg), "check the address."
	}
	conn, err := net.DialTimeout("tcp", a.server, probeTimeout)
	if err == nil {
		_ = conn.Close()
		return grpcDesc(grpcMsg), "something listens there but does not answer as a gRPC server: " +
			"is it the Kafka port (9092) or the HTTP port (8080)? The gRPC API listens on port 50051 " +
			"unless the broker was started with --grpc-addr."
	}
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (nothing listens on that port)",
			"is the broker running? Start it with `go run ./cmd/streamhouse` (or `streamhouse`)."
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("unknown host %q", dnsErr.Name), "check the host name."
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer to a TCP connection within %s", probeTimeout),
			"is the host up, and does a firewall let the port through?"
	}
	return innermost(err), "check the address and the network."
}

// addressHint says where the address came from and how to change it.
func (a *app) addressHint() string {
	return fmt.Sprintf("The address %s is %s; give the broker's gRPC address with -s HOST:PORT or $%s.",
		a.server, a.serverFrom, envAddr)
}

// innermost returns the text of the error a net.OpError wraps ("connect:
// network is unreachable"), else err's own text.
func innermost(err error) string {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		var sysErr *os.SyscallError
		if errors.As(opErr.Err, &sysErr) {
			return sysErr.Error()
		}
		return opErr.Err.Error()
	}
	return err.Error()
}

// grpcDesc extracts the description from a gRPC connection error
// (`connection error: desc = "transport: ..."`).
func grpcDesc(msg string) string {
	if _, desc, ok := strings.Cut(msg, `desc = "`); ok {
		msg = strings.TrimSuffix(desc, `"`)
	}
	return strings.TrimPrefix(msg, "transport: ")
}
