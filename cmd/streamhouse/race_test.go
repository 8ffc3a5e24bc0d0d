//go:build race

package main

// raceEnabled tells the process tests to build the broker with -race too,
// so a data race in the real server fails them (exit code 66).
const raceEnabled = true
