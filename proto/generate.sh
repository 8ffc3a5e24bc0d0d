#!/bin/sh
# generate.sh regenerates the Go code for streamhouse.proto with pinned
# generators:
#   buf                v1.75.0  (tools/go.mod)
#   protoc-gen-go-grpc v1.6.2   (tools/go.mod)
#   protoc-gen-go      = the google.golang.org/protobuf version of the main
#                        go.mod, so generated code always matches the runtime
#
# Usage: proto/generate.sh [OUTDIR]   (from anywhere; OUTDIR defaults to proto/)
# Equivalent: go generate ./proto
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out=${1:-$here}

bin=${STREAMHOUSE_PROTO_BIN:-$(go env GOCACHE)/streamhouse-protogen}
mkdir -p "$bin"
go build -C "$root/tools" -buildvcs=false -o "$bin/buf" github.com/bufbuild/buf/cmd/buf
go build -C "$root/tools" -buildvcs=false -o "$bin/protoc-gen-go-grpc" google.golang.org/grpc/cmd/protoc-gen-go-grpc
go build -C "$root" -buildvcs=false -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go

cd "$here"
PATH="$bin:$PATH" "$bin/buf" generate --output "$out"
