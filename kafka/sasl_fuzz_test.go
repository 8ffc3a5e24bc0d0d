package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/sasl"
	"github.com/streamhouse/streamhouse/meta"
)

// FuzzSASLConnection feeds bytes to a connection of a SASL listener: the
// pre-authentication path (handshakes, SaslAuthenticate, raw v0 tokens)
// must never panic, and nothing but the SASL APIs may be served before a
// valid authentication (which the fuzzer cannot forge): a produce in the
// input never reaches the log.
func FuzzSASLConnection(f *testing.F) {
	var panics atomic.Int32
	b := newTestBrokerLogging(f, func(c *Config) { c.FailedAuthenticationDelay = -1 }, panicCatcher{panics: &panics})
	b.createTopic("fixed", 1, nil)
	cred, err := sasl.NewCredential("alice", "pw", meta.ScramSHA256, sasl.MinIterations)
	if err != nil {
		f.Fatal(err)
	}
	if err := b.meta.PutScramCredential(context.Background(), cred); err != nil {
		f.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { l.Close() })

	raw := func(tok string) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...) }
	produce := frame(9, produceOne("fixed", 0, plainBatch(f, "unauthenticated")))
	seeds := [][]byte{
		frame(1, handshake(1, sasl.Plain)),
		frame(2, authenticate(2, []byte("\x00alice\x00wrong"))),
		frame(3, handshake(0, sasl.ScramSHA256)),
		raw("n,,n=alice,r=abc"),
		raw("c=biws,r=abc,p=AAAA"),
		frame(4, handshake(1, sasl.ScramSHA256)),
		frame(5, authenticate(1, []byte("n,,n=alice,r=abc"))),
		frame(6, kmsg.NewPtrApiVersionsRequest()),
		produce,
	}
	f.Add([]byte{})
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(append(bytes.Clone(s), 0xde, 0xad, 0xbe, 0xef))
		f.Add(append(bytes.Clone(s), produce...))
	}
	f.Add(bytes.Join(seeds, nil))

	f.Fuzz(func(t *testing.T, data []byte) {
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c := b.srv.serveConnOn(server, nil, true)
		client.Write(data)
		client.(*net.TCPConn).CloseWrite()
		client.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, client)
		c.close()
		<-c.done
		if n := panics.Load(); n != 0 {
			t.Fatalf("%d handler panics", n)
		}
		p, err := b.log.Partition("fixed", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, hw := p.Offsets(); hw != 0 {
			t.Fatalf("an unauthenticated connection appended: high watermark %d", hw)
		}
	})
}
