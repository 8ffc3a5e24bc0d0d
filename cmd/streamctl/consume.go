package main

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	pb "github.com/streamhouse/streamhouse/proto"
)

const consumeUsage = `Usage: streamctl consume TOPIC [-p N] [--offset N] [-l LIMIT] [-f]

Print records from offset N on. Values that are JSON objects or arrays are
pretty-printed; binary keys and values are shown as "N bytes (binary)".

  -p, --partition N    partition (default 0)
  --offset N           first offset (default 0)
  -l, --limit N        stop after N records (default 100; with --follow, no limit)
  -f, --follow         keep waiting for new records until interrupted (Ctrl-C)
  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl

-o N (a number) still sets the offset, with a deprecation warning: use --offset N.
`

// consumeBatch is the most records one Consume call asks for.
const consumeBatch = 1000

// followWait is how long one long poll of --follow waits for new records.
const followWait = 5 * time.Second

// consumeArgs is a parsed consume command line.
type consumeArgs struct {
	topic     string
	partition uint
	offset    uint64
	limit     int64
	follow    bool
}

func (a *app) consume(ctx context.Context, args []string) error {
	const cmd = "consume"
	var p consumeArgs
	fs := a.newFlagSet(cmd, func(n uint64) { p.offset = n })
	fs.UintVar(&p.partition, "p", 0, "")
	fs.UintVar(&p.partition, "partition", 0, "")
	fs.Uint64Var(&p.offset, "offset", 0, "")
	fs.Int64Var(&p.limit, "l", -1, "")
	fs.Int64Var(&p.limit, "limit", -1, "")
	fs.BoolVar(&p.follow, "f", false, "")
	fs.BoolVar(&p.follow, "follow", false, "")
	pos, err := a.parse(fs, cmd, consumeUsage, args, "TOPIC")
	if err != nil {
		return err
	}
	p.topic = pos[0]
	switch {
	case p.partition > 1<<32-1:
		return usagef(cmd, "-p %d is not a partition number", p.partition)
	case p.limit == 0 || p.limit < -1:
		return usagef(cmd, "--limit must be at least 1")
	case p.limit == -1 && !p.follow:
		p.limit = 100
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	return a.consumeLoop(ctx, c, &p)
}

// consumeLoop reads and prints until the limit, the end of the partition
// (without --follow) or an interrupt (with it).
func (a *app) consumeLoop(ctx context.Context, c pb.StreamHouseClient, p *consumeArgs) error {
	wait := min(followWait, a.timeout/2)
	next, last, hwm := p.offset, uint64(0), uint64(0)
	var n int64
	for p.limit < 0 || n < p.limit {
		req := &pb.ConsumeRequest{Topic: p.topic, Partition: uint32(p.partition), Offset: next, MaxRecords: consumeBatch}
		if p.limit > 0 {
			req.MaxRecords = uint32(min(consumeBatch, p.limit-n))
		}
		if p.follow {
			req.MaxWaitMs = uint32(wait / time.Millisecond)
		}
		res, err := call(ctx, a, c.Consume, req)
		if err != nil {
			if p.follow && ctx.Err() != nil {
				break // interrupted: a normal end of --follow
			}
			return err
		}
		for _, r := range res.GetRecords() {
			if err := a.printRecord(p, r); err != nil {
				return err
			}
		}
		if recs := res.GetRecords(); len(recs) > 0 {
			n += int64(len(recs))
			last = recs[len(recs)-1].GetOffset()
		}
		next, hwm = max(next, res.GetNextOffset()), res.GetHighWatermark()
		if !res.GetHasMore() && !p.follow {
			break
		}
	}
	if !a.json() {
		a.consumeSummary(p, n, last, hwm)
	}
	return nil
}

// consumeSummary prints the closing line of human output.
func (a *app) consumeSummary(p *consumeArgs, n int64, last, hwm uint64) {
	if n == 0 {
		a.printf("No records in %s/%d at offset %d (high watermark %d)\n", p.topic, p.partition, p.offset, hwm)
		return
	}
	a.printf("Consumed %s from %s/%d (offsets %d-%d, high watermark %d)\n",
		plural(int(n), "record"), p.topic, p.partition, p.offset, last, hwm)
}

// printRecord prints one record, for people or as a JSON line.
func (a *app) printRecord(p *consumeArgs, r *pb.ConsumedRecord) error {
	if a.json() {
		return a.printJSON(recordJSON(p, r))
	}
	var b strings.Builder
	b.WriteString("Offset: ")
	b.WriteString(strconv.FormatUint(r.GetOffset(), 10))
	b.WriteString("  Timestamp: ")
	b.WriteString(formatTime(r.GetTimestamp()))
	if len(r.GetKey()) > 0 {
		b.WriteString("  Key: ")
		b.WriteString(formatShort(r.GetKey()))
	}
	b.WriteByte('\n')
	if hs := r.GetHeaderList(); len(hs) > 0 {
		parts := make([]string, len(hs))
		for i, h := range hs {
			parts[i] = h.GetKey() + "=" + formatShort(h.GetValue())
		}
		b.WriteString("Headers: ")
		b.WriteString(strings.Join(parts, ", "))
		b.WriteByte('\n')
	}
	b.WriteString(indent(formatValue(r.GetValue()), "  "))
	b.WriteString("\n\n")
	a.printf("%s", b.String())
	return nil
}

// recordJSON is a record as -o json prints it: key and value as strings
// when they are UTF-8, else as key_base64/value_base64; headers likewise
// in headers and headers_base64.
func recordJSON(p *consumeArgs, r *pb.ConsumedRecord) map[string]any {
	obj := map[string]any{
		"topic": p.topic, "partition": p.partition, "offset": r.GetOffset(),
		"timestamp": r.GetTimestamp(), "headers": map[string]string{},
	}
	if len(r.GetKey()) > 0 {
		jsonBytes(obj, "key", r.GetKey())
	}
	jsonBytes(obj, "value", r.GetValue())
	text, bin := map[string]string{}, map[string]string{}
	for _, h := range r.GetHeaderList() {
		if utf8.Valid(h.GetValue()) {
			text[h.GetKey()] = string(h.GetValue())
		} else {
			bin[h.GetKey()] = base64.StdEncoding.EncodeToString(h.GetValue())
		}
	}
	obj["headers"] = text
	if len(bin) > 0 {
		obj["headers_base64"] = bin
	}
	return obj
}
