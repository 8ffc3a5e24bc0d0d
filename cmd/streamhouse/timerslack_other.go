//go:build !linux

package main

import "time"

// applyTimerSlack does nothing off Linux: only Linux has a per-thread
// timer slack (see timerslack_linux.go).
func applyTimerSlack(time.Duration, []string) error { return nil }
