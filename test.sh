#!/usr/bin/env bash
# test.sh: every StreamHouse test, the command README.md gives and .ci/run calls.
#
#   1. go test -race -count=1 ./...   the broker's module: unit tests, real-socket
#      integration tests, kcat, Prometheus, versitygw (S3), grpcurl, streamctl,
#      the power-loss test on FUSE; then 2,000 random crash schedules of the log
#      on a fault-injecting file system (STREAMHOUSE_SCHEDULES sets how many);
#   2. compat-tests/run.sh --franz-suite   stock clients (Go, Java and the Kafka
#      4.4.0 CLI tools, librdkafka, Python, JavaScript) and franz-go's own suite
#      against the built broker (compat-tests/ is its own module).
#
# Step 2 downloads clients from Maven Central, PyPI and npm (compat-tests/setup.sh,
# cached between runs), so outside CI it runs only when asked:
#   STREAMHOUSE_COMPAT=1 bash test.sh     (CI sets CI=true, which asks for it too)
# Tests that need a tool that is not installed skip with the reason printed; under
# CI a missing tool fails instead.
set -Eeuo pipefail
cd "$(dirname "$0")"
start=$(date +%s)
echo "== test.sh: go test -race -count=1 -timeout 20m ./..."
go test -race -count=1 -timeout 20m ./...
echo "== test.sh: go test done in $(($(date +%s) - start))s"
# The race run above does 32 random crash schedules; without the race
# detector the same test does thousands in a couple of minutes.
schedules=${STREAMHOUSE_SCHEDULES:-2000}
echo "== test.sh: $schedules random crash schedules (log TestRandomCrashSchedules, no -race)"
STREAMHOUSE_SCHEDULES=$schedules go test -count=1 -timeout 20m -run '^TestRandomCrashSchedules$' ./log
echo "== test.sh: crash schedules done in $(($(date +%s) - start))s"
if [ -n "${CI:-}" ] || [ "${STREAMHOUSE_COMPAT:-}" = 1 ]; then
	bash compat-tests/run.sh --franz-suite
else
	echo "== test.sh: compat-tests skipped: they download stock clients (Maven Central, PyPI, npm);"
	echo "   run them with STREAMHOUSE_COMPAT=1 bash test.sh, or bash compat-tests/run.sh --franz-suite"
fi
echo "== test.sh: all passed in $(($(date +%s) - start))s"
