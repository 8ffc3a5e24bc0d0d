#!/usr/bin/env bash
# benchcmp/run.sh: runs `streamhouse bench` in one go, on this machine, against
#   - StreamHouse (fsync before acks=all answers: our durability contract),
#   - StreamHouse with --fsync-acks-all=false (Kafka's default policy),
#   - Apache Kafka 4.4.0, single-node KRaft, jars from Maven Central,
#   - franz-go's kfake,
# and prints throughput and broker-CPU ratios, for the idempotent producer and
# for the transactional one (a commit every 100 ms, read_committed consumers).
# Every broker binds 127.0.0.1 and keeps its data under a temp dir that is
# removed at exit.
#
# Usage: benchcmp/run.sh [workload...]   workload = RECORDSxSIZE, e.g. 1000000x100
# Default workloads: 1000000x100 200000x1024 (8 partitions, acks=all, one producer).
# Each broker first gets one unmeasured run of each mode (the first workload).
# REPS (default 3) runs each workload that many times in each mode against each
# broker, the modes alternating; the summary gives the median and the range,
# since one run's broker CPU moves by 10-15% on a shared 2-core machine.
# TARGETS (default "streamhouse streamhouse-nofsync kafka kfake") and MODES
# (default "idempotent transactional") pick a subset; TXN_INTERVAL (default
# 100ms) is the transactional producer's commit interval.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/streamhouse-benchcmp"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
reps=${REPS:-3}
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(1000000x100 200000x1024)
read -ra targets <<<"${TARGETS:-streamhouse streamhouse-nofsync kafka kfake}"
read -ra modes <<<"${MODES:-idempotent transactional}"
txn_interval=${TXN_INTERVAL:-100ms}
for m in "${modes[@]}"; do
	case $m in idempotent | transactional) ;; *) echo "unknown mode $m" >&2; exit 2 ;; esac
done

echo "== building streamhouse and the kfake runner"
go build -o "$work/streamhouse" ./cmd/streamhouse
(cd benchcmp && go build -o "$work/kfake" ./kfake)

jars="$cache/kafka-4.4.0"
if [ ! -f "$jars/kafka_2.13-4.4.0.jar" ]; then
	echo "== fetching Apache Kafka 4.4.0 jars from Maven Central into $jars"
	(cd benchcmp/java && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$jars" -DincludeScope=runtime)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { # host port seconds
	local deadline=$(( $(date +%s) + $3 ))
	until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
		[ "$(date +%s)" -lt "$deadline" ] || { echo "broker on $1:$2 did not come up" >&2; return 1; }
		sleep 0.2
	done
}

start_streamhouse() { # name extra-args...
	local name=$1; shift
	local port; port=$(free_port)
	"$work/streamhouse" --data-dir "$work/$name" --kafka-addr "127.0.0.1:$port" --grpc-addr 127.0.0.1:0 \
		--http-addr 127.0.0.1:0 "$@" >"$work/$name.log" 2>&1 &
	pids+=($!); broker_pid=$!; broker_addr="127.0.0.1:$port"
	wait_port 127.0.0.1 "$port" 30
}

start_kafka() {
	local port cport dir="$work/kafka"
	port=$(free_port); cport=$(free_port)
	mkdir -p "$dir/logs"
	cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/logs
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
	local cp="$jars/*" id
	id=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
	java -cp "$cp" kafka.tools.StorageTool format --standalone -t "$id" -c "$dir/server.properties" >"$dir/format.log" 2>&1
	KAFKA_HEAP_OPTS="-Xmx1G -Xms1G" java -Xmx1G -Xms1G -cp "$cp" kafka.Kafka "$dir/server.properties" >"$work/kafka.log" 2>&1 &
	pids+=($!); broker_pid=$!; broker_addr="127.0.0.1:$port"
	wait_port 127.0.0.1 "$port" 90
}

start_kfake() {
	local port; port=$(free_port)
	"$work/kfake" --port "$port" >"$work/kfake.log" 2>&1 &
	pids+=($!); broker_pid=$!; broker_addr="127.0.0.1:$port"
	wait_port 127.0.0.1 "$port" 30
}

stop_broker() { kill -TERM "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }

# Each line: target mode workload records/s broker-cpu-s-per-million.
results="$work/results"
: >"$results"
run_one() { # target mode workload [warmup]
	local target=$1 mode=$2 w=$3 n=${3%x*} s=${3#*x} out extra=()
	[ "$mode" = transactional ] && extra=(--transactional --txn-commit-interval "$txn_interval")
	out=$("$work/streamhouse" bench --brokers "$broker_addr" --records "$n" --size "$s" --partitions 8 \
		--acks -1 --pid "$broker_pid" --timeout 10m "${extra[@]}")
	echo "$out" | sed "s/^/  [$target $mode $w${4:+ $4}] /"
	echo "$out" | grep -q "^verify: OK" || { echo "verification failed against $target ($mode)" >&2; return 1; }
	[ -z "${4:-}" ] || return 0
	echo "$target $mode $w $(echo "$out" | awk '/^produce:/ {print $2}')" \
		"$(echo "$out" | awk -F'[()]' '/^broker cpu:/ {split($2, a, "s "); print a[1]}')" >>"$results"
}

for t in "${targets[@]}"; do
	echo "== $t"
	# Write back what the builds and the previous broker left dirty, so that
	# no broker's syncs (StreamHouse syncs the whole filesystem) pay for it.
	sync
	case $t in
	streamhouse) start_streamhouse sh ;;
	streamhouse-nofsync) start_streamhouse shnf --fsync-acks-all=false ;;
	kafka) start_kafka ;;
	kfake) start_kfake ;;
	*) echo "unknown target $t" >&2; exit 2 ;;
	esac
	# One unmeasured run of each mode first: the JVM's JIT, Kafka's
	# __transaction_state topic, the page cache and our own first segments.
	for m in "${modes[@]}"; do run_one "$t" "$m" "${workloads[0]}" warm-up; done
	# Modes alternate within each repetition, so that a change in the
	# machine's load falls on both alike.
	for w in "${workloads[@]}"; do
		for _ in $(seq "$reps"); do
			for m in "${modes[@]}"; do run_one "$t" "$m" "$w"; done
		done
	done
	stop_broker
done

echo
python3 - "$results" "$reps" "$txn_interval" <<'PY'
import statistics, sys
from collections import defaultdict
path, reps, interval = sys.argv[1], sys.argv[2], sys.argv[3]
tput, cpu = defaultdict(list), defaultdict(list)  # (target, mode, workload) -> values
order = []
for line in open(path):
    t, m, w, rps, c = line.split()
    k = (t, m, w)
    if k not in tput:
        order.append(k)
    tput[k].append(float(rps))
    cpu[k].append(float(c))
med = lambda d, k: statistics.median(d[k])
rng = lambda d, k: f"{min(d[k]):g}-{max(d[k]):g}"
print(f"== summary: produce records/s and broker CPU s per million records (produce + follow), median of {reps} runs (range)")
print(f"   transactional: a commit every {interval}, consumers read_committed")
print(f"{'workload':<14} {'mode':<14} {'target':<20} {'records/s':>24} {'cpu-s/M':>22}")
for w in dict.fromkeys(k[2] for k in order):
    for k in sorted((k for k in order if k[2] == w), key=lambda k: (k[1], order.index(k))):
        print(f"{w:<14} {k[1]:<14} {k[0]:<20} {med(tput, k):10.0f} ({rng(tput, k)}) {med(cpu, k):8.3f} ({rng(cpu, k)})")
print()
print("== ratios of the medians (throughput: higher is better; CPU: other/ours, higher is better for us)")
def ratio(w, num, den, d=tput):
    a, b = (t + (w,) for t in (num, den))
    if a in d and b in d and med(d, b) > 0:
        return f"{med(d, a) / med(d, b):.2f}x"
    return None
def show(w, label, *pairs):
    parts = [f"{name} {r}" for name, r in pairs if r]
    if parts:
        print(f"{w}: {label}: " + "  ".join(parts))
I, T = "idempotent", "transactional"
for w in dict.fromkeys(k[2] for k in order):
    show(w, "idempotent throughput",
         ("fsync streamhouse/kafka", ratio(w, ("streamhouse", I), ("kafka", I))),
         ("nofsync streamhouse/kafka", ratio(w, ("streamhouse-nofsync", I), ("kafka", I))),
         ("streamhouse/kfake", ratio(w, ("streamhouse", I), ("kfake", I))))
    show(w, "idempotent broker CPU per record",
         ("kafka/streamhouse", ratio(w, ("kafka", I), ("streamhouse", I), cpu)),
         ("kafka/nofsync", ratio(w, ("kafka", I), ("streamhouse-nofsync", I), cpu)),
         ("kfake/streamhouse", ratio(w, ("kfake", I), ("streamhouse", I), cpu)))
    show(w, "transactional throughput",
         ("streamhouse txn/idempotent (target >= 0.8)", ratio(w, ("streamhouse", T), ("streamhouse", I))),
         ("streamhouse/kafka (target >= 2)", ratio(w, ("streamhouse", T), ("kafka", T))),
         ("nofsync streamhouse/kafka", ratio(w, ("streamhouse-nofsync", T), ("kafka", T))),
         ("streamhouse/kfake", ratio(w, ("streamhouse", T), ("kfake", T))),
         ("kafka txn/idempotent", ratio(w, ("kafka", T), ("kafka", I))))
    show(w, "transactional broker CPU per record",
         ("kafka/streamhouse", ratio(w, ("kafka", T), ("streamhouse", T), cpu)),
         ("kfake/streamhouse", ratio(w, ("kfake", T), ("streamhouse", T), cpu)),
         ("streamhouse txn/idempotent", ratio(w, ("streamhouse", T), ("streamhouse", I), cpu)),
         ("kafka txn/idempotent", ratio(w, ("kafka", T), ("kafka", I), cpu)))
PY
