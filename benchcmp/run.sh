#!/usr/bin/env bash
# benchcmp/run.sh: runs `streamhouse bench` in one go, on this machine, against
#   - StreamHouse (fsync before acks=all answers: our durability contract),
#   - StreamHouse with --fsync-acks-all=false (Kafka's default policy),
#   - Apache Kafka 4.4.0, single-node KRaft, jars from Maven Central,
#   - franz-go's kfake,
# and prints throughput and broker-CPU ratios. Every broker binds 127.0.0.1 and
# keeps its data under a temp dir that is removed at exit.
#
# Usage: benchcmp/run.sh [workload...]   workload = RECORDSxSIZE, e.g. 1000000x100
# Default workloads: 1000000x100 200000x1024 (8 partitions, acks=all, one producer).
# REPS (default 3) runs each workload that many times against each broker; the
# summary gives the median and the range, since one run's broker CPU moves by
# 10-15% on a shared 2-core machine.
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

declare -A tput cpu # "target,workload" -> one value per run, space-separated
run_one() { # target workload
	local target=$1 w=$2 n=${2%x*} s=${2#*x} out
	out=$("$work/streamhouse" bench --brokers "$broker_addr" --records "$n" --size "$s" --partitions 8 \
		--acks -1 --pid "$broker_pid" --timeout 10m)
	echo "$out" | sed "s/^/  [$target $w] /"
	tput[$target,$w]+="$(echo "$out" | awk '/^produce:/ {print $2}') "
	cpu[$target,$w]+="$(echo "$out" | awk -F'[()]' '/^broker cpu:/ {split($2, a, "s "); print a[1]}') "
	echo "$out" | grep -q "^verify: OK" || { echo "verification failed against $target" >&2; return 1; }
}

targets=(streamhouse streamhouse-nofsync kafka kfake)
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
	esac
	for w in "${workloads[@]}"; do
		for _ in $(seq "$reps"); do run_one "$t" "$w"; done
	done
	stop_broker
done

median() { python3 -c 'import statistics, sys; print(statistics.median(map(float, sys.argv[1:])))' $1; }
spread() { python3 -c 'import sys; v = sorted(map(float, sys.argv[1:])); print(f"{v[0]:g}-{v[-1]:g}")' $1; }

echo
echo "== summary: produce records/s and broker CPU s per million records (produce + follow), median of $reps runs (range)"
printf '%-14s %-20s %24s %22s\n' workload target records/s cpu-s/M
for w in "${workloads[@]}"; do
	for t in "${targets[@]}"; do
		printf '%-14s %-20s %10.0f (%s) %8.3f (%s)\n' "$w" "$t" "$(median "${tput[$t,$w]}")" "$(spread "${tput[$t,$w]}")" \
			"$(median "${cpu[$t,$w]}")" "$(spread "${cpu[$t,$w]}")"
	done
done
echo
echo "== ratios of the medians (throughput: higher is better; CPU: other/ours, higher is better for us)"
for w in "${workloads[@]}"; do
	args=()
	for t in streamhouse streamhouse-nofsync kafka kfake; do args+=("$(median "${tput[$t,$w]}")"); done
	for t in streamhouse streamhouse-nofsync kafka kfake; do args+=("$(median "${cpu[$t,$w]}")"); done
	python3 - "$w" "${args[@]}" <<'PY'
import sys
w, sh, shnf, k, kf, csh, cshnf, ck, ckf = sys.argv[1], *map(float, sys.argv[2:])
print(f"{w}: fsync streamhouse/kafka {sh/k:.2f}x  nofsync streamhouse/kafka {shnf/k:.2f}x  streamhouse/kfake {sh/kf:.2f}x")
print(f"{w}: broker CPU per record kafka/streamhouse {ck/csh:.2f}x (nofsync {ck/cshnf:.2f}x)  kfake/streamhouse {ckf/csh:.2f}x")
PY
done
