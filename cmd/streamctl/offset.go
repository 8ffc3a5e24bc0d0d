package main

import (
	"context"
	"flag"
	"strconv"

	pb "github.com/streamhouse/streamhouse/proto"
)

const offsetUsage = `Usage:
  streamctl offset commit -g GROUP -t TOPIC [-p N] --offset N [-m METADATA]
  streamctl offset get -g GROUP -t TOPIC [-p N]

Consumer-group offsets, shared with Kafka clients (OffsetCommit/OffsetFetch).
Run "streamctl offset SUBCOMMAND --help" for its flags.
`

const offsetCommitUsage = `Usage: streamctl offset commit -g GROUP -t TOPIC [-p N] --offset N [-m METADATA]

Commit a consumer group's offset: the next offset the group will consume.

  -g, --group GROUP        consumer group
  -t, --topic TOPIC        topic
  -p, --partition N        partition (default 0)
  --offset N               offset to commit
  -m, --metadata TEXT      metadata stored with the offset
  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl

-o N (a number) still sets the offset, with a deprecation warning: use --offset N.
`

const offsetGetUsage = `Usage: streamctl offset get -g GROUP -t TOPIC [-p N]

Show a consumer group's committed offset and its metadata. Fails (exit 1)
when the group has committed none for the partition.

  -g, --group GROUP        consumer group
  -t, --topic TOPIC        topic
  -p, --partition N        partition (default 0)
  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl
`

// offsetFlags are the flags both offset subcommands share.
type offsetFlags struct {
	group, topic string
	partition    uint
}

func (f *offsetFlags) register(a *app, cmd string, legacyOffset func(uint64)) *flag.FlagSet {
	fs := a.newFlagSet(cmd, legacyOffset)
	fs.StringVar(&f.group, "g", "", "")
	fs.StringVar(&f.group, "group", "", "")
	fs.StringVar(&f.topic, "t", "", "")
	fs.StringVar(&f.topic, "topic", "", "")
	fs.UintVar(&f.partition, "p", 0, "")
	fs.UintVar(&f.partition, "partition", 0, "")
	return fs
}

func (f *offsetFlags) check(cmd string) error {
	switch {
	case f.group == "":
		return usagef(cmd, "-g GROUP is required")
	case f.topic == "":
		return usagef(cmd, "-t TOPIC is required")
	case f.partition > 1<<32-1:
		return usagef(cmd, "-p %d is not a partition number", f.partition)
	}
	return nil
}

func (a *app) offsetCommit(ctx context.Context, args []string) error {
	const cmd = "offset commit"
	var f offsetFlags
	var offset uint64
	var offsetSet bool
	var metadata string
	fs := f.register(a, cmd, func(n uint64) { offset, offsetSet = n, true })
	fs.Func("offset", "", func(s string) error {
		v, err := parseUint(s)
		offset, offsetSet = v, err == nil
		return err
	})
	fs.StringVar(&metadata, "m", "", "")
	fs.StringVar(&metadata, "metadata", "", "")
	if _, err := a.parse(fs, cmd, offsetCommitUsage, args); err != nil {
		return err
	}
	if err := f.check(cmd); err != nil {
		return err
	}
	if !offsetSet {
		return usagef(cmd, "--offset N is required")
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	req := &pb.CommitOffsetRequest{ConsumerGroup: f.group, Topic: f.topic, Partition: uint32(f.partition),
		Offset: offset, Metadata: &metadata}
	if _, err := call(ctx, a, c.CommitOffset, req); err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"group": f.group, "topic": f.topic, "partition": f.partition,
			"offset": offset, "metadata": metadata, "committed": true})
	}
	a.printf("Committed offset %d for group %q on %s/%d\n", offset, f.group, f.topic, f.partition)
	return nil
}

func (a *app) offsetGet(ctx context.Context, args []string) error {
	const cmd = "offset get"
	var f offsetFlags
	fs := f.register(a, cmd, nil)
	if _, err := a.parse(fs, cmd, offsetGetUsage, args); err != nil {
		return err
	}
	if err := f.check(cmd); err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	res, err := call(ctx, a, c.GetOffset, &pb.GetOffsetRequest{ConsumerGroup: f.group, Topic: f.topic, Partition: uint32(f.partition)})
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"group": f.group, "topic": f.topic, "partition": f.partition,
			"offset": res.GetOffset(), "metadata": res.GetMetadata()})
	}
	a.printf("Group %q on %s/%d: offset %d", f.group, f.topic, f.partition, res.GetOffset())
	if md := res.GetMetadata(); md != "" {
		a.printf(" (metadata %q)", md)
	}
	a.printf("\n")
	return nil
}

// parseUint parses a decimal offset.
func parseUint(s string) (uint64, error) {
	return strconv.ParseUint(s, 10, 64)
}
