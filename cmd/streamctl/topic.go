package main

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"text/tabwriter"
	"time"

	pb "github.com/streamhouse/streamhouse/proto"
)

const topicUsage = `Usage:
  streamctl topic create NAME [-p N] [-r MS] [-c KEY=VALUE ...]
  streamctl topic list
  streamctl topic get NAME
  streamctl topic delete NAME

Run "streamctl topic SUBCOMMAND --help" for its flags.
`

const topicCreateUsage = `Usage: streamctl topic create NAME [-p N] [-r MS] [-c KEY=VALUE ...]

Create a topic.

  -p, --partitions N       number of partitions (default 1)
  -r, --retention-ms MS    keep records this long (topic config retention.ms; -1: forever)
  -c, --config KEY=VALUE   topic config, repeatable: retention.bytes, segment.bytes,
                           segment.ms, max.message.bytes, message.timestamp.type,
                           cleanup.policy (delete, compact or compact,delete; a
                           compacted topic refuses records without a key),
                           min.cleanable.dirty.ratio, min.compaction.lag.ms,
                           max.compaction.lag.ms, delete.retention.ms, ...
  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl
`

const topicListUsage = `Usage: streamctl topic list

List every topic: name, partitions, retention, creation time.

  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl
`

const topicGetUsage = `Usage: streamctl topic get NAME

Describe a topic: ID, partitions, retention, creation time and configs,
then each partition's start offset (the earliest still in the log) and
end offset (the high watermark: the offset the next record gets); their
difference counts the records kept unless compaction or transactions left
gaps), and its size in bytes (local segments plus uploaded objects).

  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl
`

const topicDeleteUsage = `Usage: streamctl topic delete NAME

Delete a topic, its records and its groups' committed offsets.

  -s, --server ADDR, -o, --output text|json, --timeout D   as for streamctl
`

func (a *app) topicCreate(ctx context.Context, args []string) error {
	const cmd = "topic create"
	fs := a.newFlagSet(cmd, nil)
	var parts uint
	var retention int64
	configs := keyValues{}
	fs.UintVar(&parts, "p", 1, "")
	fs.UintVar(&parts, "partitions", 1, "")
	fs.Int64Var(&retention, "r", -2, "")
	fs.Int64Var(&retention, "retention-ms", -2, "")
	fs.Var(configs, "c", "")
	fs.Var(configs, "config", "")
	pos, err := a.parse(fs, cmd, topicCreateUsage, args, "NAME")
	if err != nil {
		return err
	}
	if parts < 1 || parts > 1<<31-1 {
		return usagef(cmd, "-p %d: the partition count must be at least 1", parts)
	}
	req := &pb.CreateTopicRequest{Name: pos[0], PartitionCount: uint32(parts), Config: configs}
	switch {
	case retention == -1:
		// "forever" does not fit the unsigned retention_ms field.
		req.Config["retention.ms"] = "-1"
	case retention >= 0:
		ms := uint64(retention)
		req.RetentionMs = &ms
	case retention != -2:
		return usagef(cmd, "-r %d: retention must be -1 (forever) or at least 0 ms", retention)
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	res, err := call(ctx, a, c.CreateTopic, req)
	if err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"topic": pos[0], "topic_id": res.GetTopicId(), "partitions": res.GetPartitionCount()})
	}
	a.printf("Created topic %q with %s (id %s)\n", pos[0], plural(int(res.GetPartitionCount()), "partition"), res.GetTopicId())
	return nil
}

func (a *app) topicList(ctx context.Context, args []string) error {
	const cmd = "topic list"
	fs := a.newFlagSet(cmd, nil)
	if _, err := a.parse(fs, cmd, topicListUsage, args); err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	res, err := call(ctx, a, c.ListTopics, &pb.ListTopicsRequest{})
	if err != nil {
		return err
	}
	if a.json() {
		for _, t := range res.GetTopics() {
			if err := a.printJSON(topicJSON(t)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(res.GetTopics()) == 0 {
		a.printf("No topics.\n")
		return nil
	}
	w := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tPARTITIONS\tRETENTION\tCREATED")
	for _, t := range res.GetTopics() {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\n", t.GetName(), t.GetPartitionCount(), retentionText(t), formatTime(t.GetCreatedAt()))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	a.printf("\n%s\n", plural(len(res.GetTopics()), "topic"))
	return nil
}

func (a *app) topicGet(ctx context.Context, args []string) error {
	const cmd = "topic get"
	fs := a.newFlagSet(cmd, nil)
	pos, err := a.parse(fs, cmd, topicGetUsage, args, "NAME")
	if err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	res, err := call(ctx, a, c.GetTopic, &pb.GetTopicRequest{Name: pos[0]})
	if err != nil {
		return err
	}
	t := res.GetTopic()
	parts := partitionOffsets(t)
	if a.json() {
		obj := topicJSON(t)
		obj["partition_offsets"] = parts
		return a.printJSON(obj)
	}
	a.printf("Topic:       %s\n", t.GetName())
	a.printf("ID:          %s\n", t.GetTopicId())
	a.printf("Partitions:  %d\n", t.GetPartitionCount())
	a.printf("Retention:   %s\n", retentionText(t))
	a.printf("Created:     %s\n", formatTime(t.GetCreatedAt()))
	if len(t.GetConfig()) == 0 {
		a.printf("Config:      (broker defaults)\n")
	} else {
		a.printf("Config:\n")
		for _, k := range slices.Sorted(maps.Keys(t.GetConfig())) {
			a.printf("  %s = %s\n", k, t.GetConfig()[k])
		}
	}
	a.printf("\n")
	w := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PARTITION\tSTART-OFFSET\tEND-OFFSET\tSIZE")
	for _, p := range parts {
		fmt.Fprintf(w, "%d\t%d\t%d\t%d\n", p.Partition, p.LogStartOffset, p.HighWatermark, p.SizeBytes)
	}
	return w.Flush()
}

func (a *app) topicDelete(ctx context.Context, args []string) error {
	const cmd = "topic delete"
	fs := a.newFlagSet(cmd, nil)
	pos, err := a.parse(fs, cmd, topicDeleteUsage, args, "NAME")
	if err != nil {
		return err
	}
	c, err := a.connect()
	if err != nil {
		return err
	}
	if _, err := call(ctx, a, c.DeleteTopic, &pb.DeleteTopicRequest{Name: pos[0]}); err != nil {
		return err
	}
	if a.json() {
		return a.printJSON(map[string]any{"topic": pos[0], "deleted": true})
	}
	a.printf("Deleted topic %q\n", pos[0])
	return nil
}

// topicJSON is a topic as -o json prints it.
func topicJSON(t *pb.Topic) map[string]any {
	cfg := t.GetConfig()
	if cfg == nil {
		cfg = map[string]string{} // {} rather than null
	}
	obj := map[string]any{
		"topic": t.GetName(), "topic_id": t.GetTopicId(), "partitions": t.GetPartitionCount(),
		"created_at": formatTime(t.GetCreatedAt()), "config": cfg,
	}
	if t.RetentionMs != nil {
		obj["retention_ms"] = t.GetRetentionMs()
	}
	return obj
}

// retentionText renders a topic's retention for people.
func retentionText(t *pb.Topic) string {
	if ms := t.GetRetentionMs(); t.RetentionMs != nil {
		if ms > uint64(math.MaxInt64/time.Millisecond) {
			return fmt.Sprintf("%d ms", ms)
		}
		return fmt.Sprintf("%d ms (%s)", ms, time.Duration(ms)*time.Millisecond)
	}
	if t.GetConfig()["retention.ms"] == "-1" {
		return "forever"
	}
	return "default"
}
