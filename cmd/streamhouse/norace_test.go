//go:build !race

package main

// raceEnabled tells the process tests to build the broker with -race too.
const raceEnabled = false
