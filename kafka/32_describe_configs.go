package kafka

// DescribeConfigs (key 32): versions 0-4.
//
// Resources, each answered on its own:
//   - TOPIC: every config the log honours (configs.go): the override with
//     source DYNAMIC_TOPIC_CONFIG, else the broker's effective default with
//     source DEFAULT_CONFIG (STATIC_BROKER_CONFIG when the broker was
//     started with a non-default value, e.g. segment.bytes). Never
//     read-only. INVALID_TOPIC_EXCEPTION for a bad name,
//     UNKNOWN_TOPIC_OR_PARTITION for a missing topic.
//   - BROKER named with our node ID: the broker configs we run with, all
//     read-only. An empty name asks for the cluster-wide dynamic defaults:
//     there are none, so the answer is empty. Another name:
//     INVALID_REQUEST.
//   - anything else (BROKER_LOGGER, CLIENT_METRICS, GROUP): INVALID_REQUEST.
//
// ConfigNames, when not null, keeps only the named configs (unknown names
// are left out, as Kafka does).
//
// Version notes:
//   - v0: IsDefault (source is DEFAULT_CONFIG).
//   - v1: IncludeSynonyms, Source and ConfigSynonyms (override, broker
//     value, built-in default, in that order of precedence).
//   - v2: no change for us (throttle semantics).
//   - v3: IncludeDocumentation, ConfigType and Documentation.
//   - v4: flexible.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeConfigs(_ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	resp.Resources = make([]kmsg.DescribeConfigsResponseResource, len(req.Resources))
	for i, rr := range req.Resources {
		sr := &resp.Resources[i]
		sr.Default()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		configs, code, msg := s.describeResource(rr)
		if code != 0 {
			sr.ErrorCode, sr.ErrorMessage = code, &msg
			continue
		}
		sr.Configs = shapeConfigs(configs, rr.ConfigNames, req)
	}
	return resp, nil
}

// describeResource returns every config of one resource, or an error code
// and message.
func (s *Server) describeResource(rr kmsg.DescribeConfigsRequestResource) ([]kmsg.DescribeConfigsResponseResourceConfig, int16, string) {
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		t, code, msg := s.topicResource(rr.ResourceName)
		if code != 0 {
			return nil, code, msg
		}
		return s.topicConfigEntries(t), 0, ""
	case kmsg.ConfigResourceTypeBroker:
		if code, msg := s.brokerResource(rr.ResourceName); code != 0 {
			return nil, code, msg
		}
		if rr.ResourceName == "" {
			return nil, 0, "" // no dynamic cluster-wide defaults
		}
		return s.brokerConfigEntries(), 0, ""
	default:
		return nil, kerr.InvalidRequest.Code, "DescribeConfigs supports only topic and broker resources, not resource type " + rr.ResourceType.String()
	}
}

// shapeConfigs keeps the requested names and drops what the request did
// not ask for (synonyms, documentation).
func shapeConfigs(all []kmsg.DescribeConfigsResponseResourceConfig, names []string, req *kmsg.DescribeConfigsRequest) []kmsg.DescribeConfigsResponseResourceConfig {
	var keep map[string]bool
	if names != nil {
		keep = make(map[string]bool, len(names))
		for _, n := range names {
			keep[n] = true
		}
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(all))
	for _, c := range all {
		if keep != nil && !keep[c.Name] {
			continue
		}
		if !req.IncludeSynonyms {
			c.ConfigSynonyms = nil
		}
		if !req.IncludeDocumentation {
			c.Documentation = nil
		}
		out = append(out, c)
	}
	return out
}
