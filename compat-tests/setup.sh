#!/usr/bin/env bash
# compat-tests/setup.sh: installs every stock client the compatibility suite drives.
# Idempotent (each step is skipped when its result is present), runs as root in CI,
# prints each step and how long it took. Everything downloaded goes to
#   $COMPAT_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/streamhouse-compat)
# which persists between runs on the same machine:
#   kafka-4.4.0/   jars: Apache Kafka 4.4.0 broker, CLI tools, kafka-clients,
#                  kafka-streams and connect-runtime (java/pom.xml)
#   m2/            Maven's local repository for that download
# and inside compat-tests/ (git-ignored): .venv (Python clients), js/node_modules (kafkajs).
# kcat comes from Debian (apt-get). Go clients come through go.mod (Go module cache).
set -Eeuo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache="${COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamhouse-compat}"
mkdir -p "$cache"

# Pinned versions: change them here (and in js/package.json, java/pom.xml, go.mod).
CONFLUENT_KAFKA_VERSION=2.16.1
KAFKA_PYTHON_VERSION=3.0.12
# kafka-python's codecs beyond gzip come from these optional packages.
PY_CODECS="python-snappy==0.7.3 lz4==4.4.5 zstandard==0.25.0"
KAFKA_VERSION=4.4.0
FRANZ_GO_VERSION=v1.22.3

step() { # name cmd...
	local name=$1 start
	shift
	start=$(date +%s)
	echo "== setup: $name"
	"$@"
	echo "== setup: $name: done in $(($(date +%s) - start))s"
}

apt_kcat() {
	if command -v kcat >/dev/null; then
		echo "kcat present: $(command -v kcat)"
		return
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat
}

python_venv() {
	local venv="$here/.venv" want="confluent-kafka==$CONFLUENT_KAFKA_VERSION kafka-python==$KAFKA_PYTHON_VERSION $PY_CODECS"
	if [ -f "$venv/.installed" ] && [ "$(cat "$venv/.installed")" = "$want" ]; then
		echo "venv present: $venv ($want)"
		return
	fi
	if ! python3 -m venv "$venv" 2>/dev/null; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv
		python3 -m venv "$venv"
	fi
	# shellcheck disable=SC2086
	"$venv/bin/pip" install -q --disable-pip-version-check $want
	echo "$want" >"$venv/.installed"
}

npm_kafkajs() {
	if [ -f "$here/js/node_modules/kafkajs/package.json" ]; then
		echo "kafkajs present: $(node -p "require('$here/js/node_modules/kafkajs/package.json').version")"
		return
	fi
	(cd "$here/js" && npm ci --no-audit --no-fund --loglevel=error)
}

maven_kafka() {
	# .complete holds the checksum of the pom.xml the jars were copied for,
	# so that adding an artifact there fetches again.
	local jars="$cache/kafka-$KAFKA_VERSION" pom
	pom=$(sha256sum "$here/java/pom.xml" | cut -d' ' -f1)
	if [ -f "$jars/.complete" ] && [ "$(cat "$jars/.complete")" = "$pom" ]; then
		echo "jars present: $jars ($(ls "$jars" | wc -l) files)"
		return
	fi
	rm -rf "$jars.tmp"
	(cd "$here/java" && mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$cache/m2" dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory="$jars.tmp")
	echo "$pom" >"$jars.tmp/.complete"
	rm -rf "$jars" && mv "$jars.tmp" "$jars"
	echo "copied $(ls "$jars" | wc -l) jars into $jars"
}

go_modules() {
	(cd "$here" && go mod download)
	# franz-go's module source, for franz-suite.sh (its own integration tests).
	go mod download -json "github.com/twmb/franz-go@$FRANZ_GO_VERSION" >/dev/null
	echo "Go modules in $(go env GOMODCACHE)"
}

total=$(date +%s)
step "kcat (Debian)" apt_kcat
step "Python venv: confluent-kafka $CONFLUENT_KAFKA_VERSION, kafka-python $KAFKA_PYTHON_VERSION" python_venv
step "kafkajs (npm ci, js/package-lock.json)" npm_kafkajs
step "Apache Kafka $KAFKA_VERSION jars (Maven Central)" maven_kafka
step "Go modules" go_modules
echo "== setup: all done in $(($(date +%s) - total))s (cache: $cache)"
