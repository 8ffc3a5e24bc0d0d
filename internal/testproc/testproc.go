// Package testproc holds what the harnesses that run real servers for
// tests (objstore/s3test's versitygw, meta/pgtest's PostgreSQL) share: a
// free loopback port and the tail of a server's log for failure messages.
package testproc

import (
	"net"
	"os"
)

// FreeAddr returns a 127.0.0.1 address with a port free a moment ago.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// LogTail returns the last 4 KiB of the log of the server called name at
// path, headed with both, or "" when it cannot be read.
func LogTail(name, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	const max = 4 << 10
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return name + " log (" + path + "):\n" + string(data)
}
