// Command streamctl is the command-line client of StreamHouse's native
// gRPC API: topics, produce, consume and consumer-group offsets.
//
//	streamctl [-s ADDR] [-o text|json] COMMAND ...
//
// Run `streamctl --help` for the commands. The server address comes from
// -s/--server, else $STREAMHOUSE_ADDR, else localhost:50051. Output is for
// people by default and one JSON object per line with -o json. The exit
// status is 0 on success, 1 when the server (or the connection to it)
// fails the request, with its message on stderr, and 2 for a usage error.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// SIGINT and SIGTERM end `consume --follow` cleanly (exit 0) and
	// cancel any call in flight.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
