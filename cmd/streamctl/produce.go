package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	pb "github.com/streamhouse/streamhouse/proto"
)

const produceUsage = `Usage:
  streamctl produce TOPIC [-p N] -v VALUE [-k KEY] [-H KEY=VALUE ...] [-t MS]
  streamctl produce TOPIC [-p N] --stdin [-k KEY] [-H KEY=VALUE ...] [-b N]

Produce one record, or one record per line of standard input (blank lines
are skipped), sent in batches. The server answers once the records are on disk.

  -p, --partition N        partition (default 0)
  -v, --value VALUE        the record's value
      --stdin              read values from standard input, one per line
  -k, --key KEY            the record's key (every record's, with --stdin);
                           required by topics with cleanup.policy=compact
  -H, --header KEY=VALUE   a header, repeatable
  -t, --timestamp MS       the record's timestamp in ms since the epoch (default: now)
  -b, --batch-size N       records per ProduceBatch call with --stdin (default 1000)
  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl
`

// maxLine bounds one line of --stdin input.
const maxLine = 64 << 20

// produceArgs is a parsed produce command line.
type produceArgs struct {
	topic     string
	partition uint
	value     string
	valueSet  bool
	stdin     bool
	key       string
	headers   keyValues
	timestamp uint64
	batchSize uint
}

func (a *app) produce(ctx context.Context, args []string) error {
	const cmd = "produce"
	p := produceArgs{headers: keyValues{}}
	fs := a.newFlagSet(cmd, nil)
	fs.UintVar(&p.partition, "p", 0, "")
	fs.UintVar(&p.partition, "partition", 0, "")
	fs.Func("v", "", func(s string) error { p.value, p.valueSet = s, true; return nil })
	fs.Func("value", "", func(s string) error { p.value, p.valueSet = s, true; return nil })
	fs.BoolVar(&p.stdin, "stdin", false, "")
	fs.StringVar(&p.key, "k", "", "")
	fs.StringVar(&p.key, "key", "", "")
	fs.Var(p.headers, "H", "")
	fs.Var(p.headers, "header", "")
	fs.Uint64Var(&p.timestamp, "t", 0, "")
	fs.Uint64Var(&p.timestamp, "timestamp", 0, "")
	fs.UintVar(&p.batchSize, "b", 1000, "")
	fs.UintVar(&p.batchSize, "batch-size", 1000, "")
	pos, err := a.parse(fs, cmd, produceUsage, args, "TOPIC")
	if err != nil {
		return err
	}
	p.topic = pos[0]
	switch {
	case p.valueSet == p.stdin:
		return usagef(cmd, "give either -v VALUE or --stdin")
	case p.partition > 1<<32-1:
		return usagef(cmd, "-p %d is not a partition number", p.partition)
	case p.batchSize < 1 || p.batchSize > 1_000_000:
		return usagef(cmd, "--batch-size must be between 1 and 1000000")
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	if p.stdin {
		return a.produceStdin(ctx, c, &p)
	}
	res, err := call(ctx, a, c.Produce, &pb.ProduceRequest{
		Topic: p.topic, Partition: uint32(p.partition), Key: []byte(p.key), Value: []byte(p.value),
		Headers: p.headers, Timestamp: p.timestamp,
	})
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"topic": p.topic, "partition": p.partition,
			"offset": res.GetOffset(), "timestamp": res.GetTimestamp()})
	}
	a.printf("Produced 1 record to %s/%d at offset %d (timestamp %s)\n",
		p.topic, p.partition, res.GetOffset(), formatTime(res.GetTimestamp()))
	return nil
}

// produceStdin sends stdin's lines in batches of p.batchSize records.
func (a *app) produceStdin(ctx context.Context, c pb.StreamHouseClient, p *produceArgs) error {
	r := bufio.NewReaderSize(a.stdin, 64<<10)
	var (
		batch         []*pb.Record
		total, calls  int
		first, last   uint64
		readErr       error
		reachedTheEnd bool
	)
	for !reachedTheEnd {
		var line []byte
		line, readErr = readLine(r)
		if readErr == io.EOF {
			reachedTheEnd, readErr = true, nil
		}
		if readErr != nil {
			break
		}
		if len(line) > 0 {
			batch = append(batch, &pb.Record{Key: []byte(p.key), Value: line, Headers: p.headers, Timestamp: p.timestamp})
		}
		if len(batch) == 0 || (len(batch) < int(p.batchSize) && !reachedTheEnd) {
			continue
		}
		res, err := call(ctx, a, c.ProduceBatch, &pb.ProduceBatchRequest{Topic: p.topic, Partition: uint32(p.partition), Records: batch})
		if err != nil {
			if total > 0 {
				fmt.Fprintf(a.errOut, "%s were produced (offsets %d-%d) before this failure.\n", plural(total, "record"), first, last)
			}
			return err
		}
		if calls == 0 {
			first = res.GetFirstOffset()
		}
		last, total, calls, batch = res.GetLastOffset(), total+len(batch), calls+1, nil
		if a.json() {
			if err := a.printJSON(map[string]any{"topic": p.topic, "partition": p.partition,
				"first_offset": res.GetFirstOffset(), "last_offset": res.GetLastOffset(), "count": res.GetCount()}); err != nil {
				return err
			}
		}
	}
	if readErr != nil {
		return fmt.Errorf("reading standard input after %s: %w", plural(total, "record"), readErr)
	}
	if !a.json() {
		if total == 0 {
			a.printf("No records: standard input had no non-blank lines\n")
		} else {
			a.printf("Produced %s to %s/%d (offsets %d-%d) in %s\n", plural(total, "record"), p.topic, p.partition,
				first, last, plural(calls, "batch"))
		}
	}
	return nil
}

// readLine returns the next line without its line ending; io.EOF comes
// with the last line when it has no newline.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("a line is longer than %d bytes", maxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		return line, err
	}
}
