// Command streamhouse runs the StreamHouse broker: one process holding the
// storage engine (partition logs, segment cache, metadata store, object
// store) behind its network fronts, plus an HTTP server for /metrics,
// /healthz and /readyz.
//
// Every setting is a flag with an environment twin (run with --help for the
// list); a flag wins over its variable, which wins over the default. With
// no settings at all the broker keeps everything under ./data.
//
// `streamhouse bench` is a load generator and checker for any Kafka broker
// (see bench.go).
//
// `streamhouse --version` prints the module version and the VCS revision
// the binary was built from; the broker logs them at start.
//
// Exit codes: 0 after a clean shutdown on SIGINT or SIGTERM, 1 when the
// broker fails to start or fails while running, 2 for bad configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/streamhouse/streamhouse/internal/version"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitConfig = 2
)

func main() {
	os.Exit(mainCode(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr, applyTimerSlack))
}

// mainCode runs the broker with the given arguments and environment and
// returns the process exit code. Before the broker starts it calls
// setSlack (nil: skip) with the configured timer slack; the process's own
// main passes applyTimerSlack, which may re-execute the binary.
func mainCode(args []string, getenv func(string) (string, bool), stdout, stderr io.Writer,
	setSlack func(time.Duration, []string) error) int {
	if len(args) > 0 && args[0] == "bench" {
		return benchMain(args[1:], stdout, stderr)
	}
	if slices.Contains(args, "--version") || slices.Contains(args, "-version") {
		fmt.Fprintf(stdout, "streamhouse %s\n", version.Read())
		return exitOK
	}
	cfg, err := LoadConfig(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		Usage(stdout)
		fmt.Fprintf(stdout, "\n'streamhouse --version' prints the version and the VCS revision it was built from.\n")
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamhouse: %v\nRun 'streamhouse --help' for the settings.\n", err)
		return exitConfig
	}
	logger := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if setSlack != nil {
		if err := setSlack(cfg.TimerSlack, args); err != nil {
			// The broker works with any slack; it only costs more CPU.
			logger.Warn("timer slack not applied", "timer_slack", cfg.TimerSlack, "err", err)
		}
	}
	// After setSlack, which may re-execute the binary: one line per broker.
	v := version.Read()
	logger.Info("starting", "version", v.Version, "revision", v.Revision, "modified", v.Modified, "go", v.Go)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default handling so that a second
	// one kills a shutdown that hangs.
	context.AfterFunc(ctx, stop)

	if err := run(ctx, cfg, logger); err != nil {
		logger.Error("streamhouse failed", "err", err)
		return exitFailed
	}
	return exitOK
}

// newLogger returns a slog logger writing format ("text" or "json") to w.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
