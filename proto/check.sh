#!/bin/sh
# check.sh fails if the committed generated code differs from what
# generate.sh produces now (CI runs it). Usage: proto/check.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$here/generate.sh" "$tmp"
status=0
for f in "$tmp"/*.go; do
	name=$(basename "$f")
	if ! diff -u "$here/$name" "$f"; then
		status=1
	fi
done
for f in "$here"/*.pb.go; do
	if [ ! -e "$tmp/$(basename "$f")" ]; then
		echo "proto/$(basename "$f") is not generated any more: remove it" >&2
		status=1
	fi
done
if [ "$status" -ne 0 ]; then
	echo "proto/: generated code is stale; run proto/generate.sh and commit the result" >&2
	exit 1
fi
echo "proto/: generated code is up to date"
