package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/streamhouse/streamhouse/kafka/sasl"
	"github.com/streamhouse/streamhouse/meta"
)

// SASL settings: --sasl-mechanisms, --failed-authentication-delay and
// --bootstrap-user (the listeners themselves are in tls.go).

// BootstrapUser is --bootstrap-user: a user whose SCRAM credentials the
// broker creates or replaces at start. Its String and LogValue hide the
// password.
type BootstrapUser struct {
	Name, Password string
}

// String implements fmt.Stringer without the password.
func (u BootstrapUser) String() string {
	if u.Name == "" {
		return ""
	}
	return u.Name + ":xxxxx"
}

// LogValue implements slog.LogValuer without the password.
func (u BootstrapUser) LogValue() slog.Value { return slog.StringValue(u.String()) }

// parseBootstrapUser parses NAME:PASSWORD; "" is none. Errors never
// repeat the value (it holds a password).
func parseBootstrapUser(v string) (BootstrapUser, error) {
	if v == "" {
		return BootstrapUser{}, nil
	}
	name, pw, ok := strings.Cut(v, ":")
	if !ok || name == "" || pw == "" {
		return BootstrapUser{}, errors.New("want NAME:PASSWORD with neither empty")
	}
	return BootstrapUser{Name: name, Password: pw}, nil
}

// parseSASLMechanisms parses --sasl-mechanisms: a comma-separated,
// non-empty list of PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.
func parseSASLMechanisms(v string) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for _, m := range strings.Split(v, ",") {
		m = strings.ToUpper(strings.TrimSpace(m))
		if !sasl.Supported(m) {
			return nil, fmt.Errorf("unsupported mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", m)
		}
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// checkSASL checks the SASL settings against the listeners.
func (c *Config) checkSASL(names map[string]string) error {
	if c.BootstrapUser.Name == "" {
		return nil
	}
	for _, l := range c.KafkaListeners {
		if usesSASL(l.Name) {
			return nil
		}
	}
	return fmt.Errorf("%s is set but no listener uses SASL: add a SASL_PLAINTEXT or SASL_SSL listener to --kafka-listeners",
		names["bootstrap-user"])
}

// bootstrapIterations is the iteration count of --bootstrap-user's
// credentials: kafka-configs.sh's default.
const bootstrapIterations = sasl.MinIterations

// createBootstrapUser creates or replaces the bootstrap user's
// SCRAM-SHA-256 and SCRAM-SHA-512 credentials.
func createBootstrapUser(ctx context.Context, store meta.Store, u BootstrapUser, logger *slog.Logger) error {
	for _, m := range []meta.ScramMechanism{meta.ScramSHA256, meta.ScramSHA512} {
		c, err := sasl.NewCredential(u.Name, u.Password, m, bootstrapIterations)
		if err == nil {
			err = store.PutScramCredential(ctx, c)
		}
		if err != nil {
			return fmt.Errorf("bootstrap user %q: %w", u.Name, err)
		}
	}
	logger.Info("bootstrap user's SCRAM credentials stored", "user", u.Name,
		"mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512", "iterations", bootstrapIterations)
	return nil
}
