package objstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLocalPutFile stores a 64 MiB file (a sealed segment's size)
// in a Local store, as the log's uploader does.
func BenchmarkLocalPutFile(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "segment")
	const size = 64 << 20
	if err := os.WriteFile(src, make([]byte, size), 0o644); err != nil {
		b.Fatal(err)
	}
	l, err := NewLocal(filepath.Join(dir, "objects"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Put(context.Background(), "topics/t/0/seg", f, size); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
