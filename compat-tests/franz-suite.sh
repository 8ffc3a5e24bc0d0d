#!/usr/bin/env bash
# compat-tests/franz-suite.sh: runs franz-go's own integration tests (pkg/kgo at
# v1.22.3) against a broker, as `KGO_TEST_RF=1 KGO_SEEDS=<broker> go test
# github.com/twmb/franz-go/pkg/kgo` would, and saves the pass/fail list.
#
# Usage: franz-suite.sh [--broker streamhouse|kafka] [--bootstrap HOST:PORT]
#                       [--run REGEX] [--timeout DURATION] [--records N] [--out DIR]
#   --broker     which broker to start (default: $COMPAT_BROKER or streamhouse);
#                with --bootstrap, which kind the running broker is
#   --bootstrap  use an already-running broker instead of starting one
#   --run        go test -run filter (default: all tests)
#   --timeout    go test -timeout (default 12m)
#   --records    KGO_TEST_RECORDS, records per produce/consume test (default 20000;
#                the suite's own default, 500000, takes far too long on 2 cores)
#   --out        where results go (default: a temp dir, printed)
# The broker it starts has a SASL_PLAINTEXT listener too (compatbroker -sasl:
# SCRAM-SHA-256 and -512, an admin user), which TestSCRAMAuth and
# TestSCRAMAuthBadCredentials use (KGO_TEST_SCRAM_SEEDS, KGO_TEST_SCRAM:
# SCRAM-SHA-256). With --bootstrap they skip unless those are in the environment.
# Results: OUT/franz-suite-BROKER.txt (one "PASS|FAIL|SKIP Test seconds" line per
# top-level test), OUT/franz-suite-BROKER.log (go test -v output).
# Exit status: 0 when every failing test is listed for that broker in
# franz-suite.known-failures (with its reason), 1 otherwise. Tests listed in
# franz-suite.skip for that broker are not run at all (printed with reasons).
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
broker=${COMPAT_BROKER:-streamhouse}
bootstrap="" run="" timeout=12m records=20000 out=""
while [ $# -gt 0 ]; do
	case $1 in
	--broker) broker=$2; shift 2 ;;
	--bootstrap) bootstrap=$2; shift 2 ;;
	--run) run=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--records) records=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
	esac
done
FRANZ_GO_VERSION=v1.22.3
work=$(mktemp -d)
out=${out:-$work/results}
mkdir -p "$out"
broker_pid=""
cleanup() {
	if [ -n "$broker_pid" ]; then
		kill -TERM "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	chmod -R u+w "$work/franz-go" 2>/dev/null || true
	rm -rf "$work/franz-go" "$work/compatbroker"
}
trap cleanup EXIT

echo "== franz-suite: module source github.com/twmb/franz-go@$FRANZ_GO_VERSION"
src=$(go mod download -json "github.com/twmb/franz-go@$FRANZ_GO_VERSION" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
cp -r "$src" "$work/franz-go"
chmod -R u+w "$work/franz-go"

if [ -z "$bootstrap" ]; then
	echo "== franz-suite: starting $broker (compat-tests/cmd/compatbroker)"
	(cd "$here" && go build -o "$work/compatbroker" ./cmd/compatbroker)
	COMPAT_BROKER=$broker "$work/compatbroker" -sasl -max-lifetime 30m >"$work/bootstrap" 2>"$out/broker-$broker.log" &
	broker_pid=$!
	deadline=$(($(date +%s) + 120))
	until grep -q '^SASL_USER=' "$work/bootstrap"; do
		kill -0 "$broker_pid" 2>/dev/null || { cat "$out/broker-$broker.log" >&2; exit 1; }
		[ "$(date +%s)" -lt "$deadline" ] || { echo "broker did not start within 120s" >&2; exit 1; }
		sleep 0.2
	done
	bootstrap=$(sed -n 's/^BOOTSTRAP=//p' "$work/bootstrap")
	export KGO_TEST_SCRAM_SEEDS KGO_TEST_SCRAM
	KGO_TEST_SCRAM_SEEDS=$(sed -n 's/^SASL_BOOTSTRAP=//p' "$work/bootstrap")
	KGO_TEST_SCRAM=$(sed -n 's/^SASL_USER=//p' "$work/bootstrap")
	echo "== franz-suite: SCRAM tests against the SASL_PLAINTEXT listener $KGO_TEST_SCRAM_SEEDS"
fi
# Tests listed in franz-suite.skip for this broker are not run (go test
# -skip): they need a feature the broker lacks and would only hang until
# the timeout. Each is printed with its reason.
skip=""
while read -r b t reason; do
	case $b in '#'* | '') continue ;; esac
	[ "$b" = "$broker" ] || continue
	echo "== franz-suite: skipping $t: $reason"
	skip="${skip:+$skip|}$t"
done <"$here/franz-suite.skip"
echo "== franz-suite: go test ./pkg/kgo against $broker at $bootstrap (timeout $timeout, $records records${run:+, -run $run})"
start=$(date +%s)
set +e
(cd "$work/franz-go" && KGO_TEST_RF=1 KGO_SEEDS=$bootstrap KGO_TEST_RECORDS=$records KGO_LOG_LEVEL=none \
	go test -count=1 -json -timeout "$timeout" ${run:+-run "$run"} ${skip:+-skip "^($skip)\$"} ./pkg/kgo/) >"$out/franz-suite-$broker.json"
set -e
echo "== franz-suite: go test took $(($(date +%s) - start))s"

python3 - "$out/franz-suite-$broker.json" "$out/franz-suite-$broker.txt" "$out/franz-suite-$broker.log" \
	"$here/franz-suite.known-failures" "$broker" <<'PY'
import json, sys
src, txt, log, known_path, broker = sys.argv[1:]
status, elapsed, outputs = {}, {}, []
for line in open(src):
    try:
        ev = json.loads(line)
    except ValueError:
        outputs.append(line)
        continue
    if "Output" in ev:
        outputs.append(ev["Output"])
    t = ev.get("Test")
    if not t or "/" in t:
        continue
    if ev.get("Action") in ("pass", "fail", "skip"):
        status[t], elapsed[t] = ev["Action"].upper(), ev.get("Elapsed", 0)
    elif ev.get("Action") == "run":
        status.setdefault(t, "FAIL")  # started, never finished: the timeout hit
open(log, "w").write("".join(outputs))
known = {}
for line in open(known_path):
    f = line.split(None, 2)
    if len(f) >= 2 and not line.startswith("#") and f[0] == broker:
        known[f[1]] = f[2].strip() if len(f) > 2 else ""
with open(txt, "w") as w:
    for t in sorted(status):
        w.write(f"{status[t]} {t} {elapsed.get(t, 0):.1f}s\n")
counts = {s: sum(1 for v in status.values() if v == s) for s in ("PASS", "FAIL", "SKIP")}
unexpected = [t for t, s in status.items() if s == "FAIL" and t not in known]
for t in sorted(t for t, s in status.items() if s == "FAIL"):
    print(f"  FAIL {t}: " + (f"known: {known[t]}" if t in known else "UNEXPECTED"))
for t in sorted(t for t in known if status.get(t) == "PASS"):
    print(f"  PASS {t}: listed as a known failure; remove it from franz-suite.known-failures")
print(f"franz-suite: {counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
print(f"results: {txt}\nlog: {log}")
if not status:
    print("franz-suite: no test ran (build failure?); see the log")
    sys.exit(1)
sys.exit(1 if unexpected else 0)
PY
