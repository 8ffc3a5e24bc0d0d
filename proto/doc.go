// Package streamhousepb holds the Go code generated from streamhouse.proto,
// StreamHouse's native gRPC API. Do not edit the *.pb.go files: change the
// .proto and run ./generate.sh (or `go generate ./proto`), which uses the
// generator versions pinned in tools/go.mod and go.mod; ./check.sh verifies
// that the committed code is current.
package streamhousepb

//go:generate ./generate.sh
