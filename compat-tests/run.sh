#!/usr/bin/env bash
# compat-tests/run.sh: installs the stock clients (setup.sh), then runs the
# compatibility matrix (go test ./... in compat-tests) against one broker and,
# with --franz-suite, franz-go's own integration tests too.
#
# Usage: run.sh [--broker streamhouse|kafka] [--bootstrap HOST:PORT] [--franz-suite]
#               [--skip-setup] [-- GO_TEST_ARGS...]
#   --broker      COMPAT_BROKER: streamhouse (default; builds ../cmd/streamhouse,
#                 one fresh broker per test) or kafka (Apache Kafka 4.4.0, KRaft)
#   --bootstrap   COMPAT_BROKER's kind, already running at HOST:PORT
#   --franz-suite also run franz-suite.sh against the same kind of broker
#   --skip-setup  do not run setup.sh
#   GO_TEST_ARGS  e.g. -run 'Kcat|Java' -v
# Environment: COMPAT_STREAMHOUSE_BIN (use this binary instead of building),
# COMPAT_FRESH_BROKER=1 (a fresh Apache Kafka per test), COMPAT_IGNORE_REQUIREMENTS=1
# (run the tests harness.Requirements would skip), COMPAT_CACHE (download cache).
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
broker=${COMPAT_BROKER:-streamhouse} bootstrap="" franz=0 setup=1
while [ $# -gt 0 ]; do
	case $1 in
	--broker) broker=$2; shift 2 ;;
	--bootstrap) bootstrap=$2; shift 2 ;;
	--franz-suite) franz=1; shift ;;
	--skip-setup) setup=0; shift ;;
	--) shift; break ;;
	*) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
	esac
done
start=$(date +%s)
if [ "$setup" = 1 ]; then
	bash "$here/setup.sh"
fi
export COMPAT_BROKER=$broker
if [ -n "$bootstrap" ]; then
	export COMPAT_BOOTSTRAP=$bootstrap
fi
cd "$here"
echo "== run: gofmt and go vet (compat-tests)"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt: these files need formatting:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
echo "== run: go test -count=1 ./... against $broker${bootstrap:+ at $bootstrap}"
t0=$(date +%s)
log=$(mktemp -t compat-go-test-XXXXXX.log)
set +e
go test -count=1 -timeout 20m -json ./... "$@" | python3 "$here/summarize.py" "$log"
rc=${PIPESTATUS[1]}
set -e
echo "== run: go test took $(($(date +%s) - t0))s (full log: $log)"
[ "$rc" = 0 ] || exit "$rc"
if [ "$franz" = 1 ]; then
	bash "$here/franz-suite.sh" --broker "$broker" ${bootstrap:+--bootstrap "$bootstrap"}
fi
echo "== run: all done in $(($(date +%s) - start))s"
