package kafka

// IncrementalAlterConfigs (key 44): versions 0-1.
//
// Each resource's operations are applied in order to its current
// overrides, the result is validated as a whole, and it is stored in one
// step (log.Manager.UpdateTopicConfigs, serialized with other config
// changes, so concurrent requests on different keys do not lose each
// other). Each resource is answered on its own:
//   - the same resource twice: INVALID_REQUEST for each; a key twice, a
//     null value for anything but DELETE, or an unknown operation:
//     INVALID_REQUEST (Kafka's checks);
//   - TOPIC: INVALID_TOPIC_EXCEPTION / UNKNOWN_TOPIC_OR_PARTITION as in
//     DescribeConfigs. SET sets an override; DELETE removes it (a key with
//     no override, even an unknown one, is a no-op, as in Kafka); APPEND
//     and SUBTRACT add or remove comma-separated items of a LIST config
//     (only cleanup.policy), starting from the effective value; on any
//     other key they get INVALID_CONFIG, as in KRaft. A result the log
//     does not accept (unknown key, bad value): INVALID_CONFIG.
//   - BROKER (our node ID or empty): read-only, SET, APPEND and SUBTRACT
//     get INVALID_CONFIG; DELETE succeeds (no dynamic broker config is
//     ever set, so there is nothing to delete), as does an empty list.
//     Another name: INVALID_REQUEST.
//   - other resource types: INVALID_REQUEST.
//
// ValidateOnly computes and validates the result against the current
// overrides and stores nothing.
//
// Version notes: v1 is flexible.

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	resp.Resources = make([]kmsg.IncrementalAlterConfigsResponseResource, len(req.Resources))
	alterEach(len(req.Resources),
		func(i int) resourceKey {
			return resourceKey{req.Resources[i].ResourceType, req.Resources[i].ResourceName}
		},
		func(i int) (int16, string) { return s.incrementalAlter(ctx, req.Resources[i], req.ValidateOnly) },
		func(i int, code int16, msg string) {
			sr := &resp.Resources[i]
			sr.Default()
			sr.ResourceType, sr.ResourceName = req.Resources[i].ResourceType, req.Resources[i].ResourceName
			if code != 0 {
				sr.ErrorCode, sr.ErrorMessage = code, &msg
			}
		})
	return resp, nil
}

// incrementalAlter applies one resource's operations; it returns an error
// code and message, or 0.
func (s *Server) incrementalAlter(ctx context.Context, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (int16, string) {
	if code, msg := checkOps(rr.Configs); code != 0 {
		return code, msg
	}
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		t, code, msg := s.topicResource(rr.ResourceName)
		if code != 0 {
			return code, msg
		}
		if validateOnly {
			cur := maps.Clone(t.Configs)
			if cur == nil {
				cur = make(map[string]string)
			}
			_, err := s.applyOps(cur, rr.Configs)
			return errorCode(err), errorText(err)
		}
		err := s.cfg.Log.UpdateTopicConfigs(ctx, rr.ResourceName, func(cur map[string]string) (map[string]string, error) {
			return s.applyOps(cur, rr.Configs)
		})
		return errorCode(err), errorText(err)
	case kmsg.ConfigResourceTypeBroker:
		if code, msg := s.brokerResource(rr.ResourceName); code != 0 {
			return code, msg
		}
		// Nothing dynamic is ever set on a broker here, so deleting a
		// dynamic broker config changes nothing and succeeds, as in Kafka
		// (kafka-reassign-partitions --verify clears its throttles so).
		var names []string
		for _, c := range rr.Configs {
			if c.Op != kmsg.IncrementalAlterConfigOpDelete {
				names = append(names, c.Name)
			}
		}
		if len(names) == 0 {
			return 0, ""
		}
		sort.Strings(names)
		return s.brokerAlterError(names[0])
	default:
		return kerr.InvalidRequest.Code, "IncrementalAlterConfigs supports only topic and broker resources, not resource type " + rr.ResourceType.String()
	}
}

// checkOps applies Kafka's request-shape checks: no key twice, no null
// value except for DELETE, known operations only.
func checkOps(ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, string) {
	seen := make(map[string]bool, len(ops))
	var nulls []string
	for _, c := range ops {
		if seen[c.Name] {
			return kerr.InvalidRequest.Code, msgDuplicateKeys
		}
		seen[c.Name] = true
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpDelete,
			kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
		default:
			return kerr.InvalidRequest.Code, fmt.Sprintf("unknown operation %d for config %q", c.Op, c.Name)
		}
		if c.Value == nil && c.Op != kmsg.IncrementalAlterConfigOpDelete {
			nulls = append(nulls, c.Name)
		}
	}
	if len(nulls) > 0 {
		return kerr.InvalidRequest.Code, "Null value not supported for : " + strings.Join(nulls, ",")
	}
	return 0, ""
}

// applyOps applies checked operations to a topic's overrides (cur is
// modified) and validates the result.
func (s *Server) applyOps(cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	for _, c := range ops {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			cur[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cur, c.Name)
		default: // APPEND, SUBTRACT
			if !isListConfig(c.Name) {
				return nil, fmt.Errorf("%w: can't %s to key %s because its type is not LIST", log.ErrInvalidConfig, c.Op, c.Name)
			}
			v, ok := cur[c.Name]
			if !ok {
				v, _ = s.cfg.Log.TopicConfigDefault(c.Name)
			}
			cur[c.Name] = listOp(v, *c.Value, c.Op == kmsg.IncrementalAlterConfigOpAppend)
		}
	}
	if err := log.ValidateTopicConfigs(cur); err != nil {
		return nil, err
	}
	return cur, nil
}

// listOp adds (or removes) the comma-separated items of arg to (from) the
// comma-separated list v, keeping its order and adding no duplicates.
func listOp(v, arg string, add bool) string {
	var items []string
	for _, it := range strings.Split(v, ",") {
		if it != "" {
			items = append(items, it)
		}
	}
	for _, it := range strings.Split(arg, ",") {
		i := indexOf(items, it)
		switch {
		case add && i < 0 && it != "":
			items = append(items, it)
		case !add && i >= 0:
			items = append(items[:i], items[i+1:]...)
		}
	}
	return strings.Join(items, ",")
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
