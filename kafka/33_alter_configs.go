package kafka

// AlterConfigs (key 33): versions 0-2.
//
// The legacy, non-incremental API: a topic's overrides are REPLACED by the
// request's configs (keys left out return to their defaults). Each
// resource is answered on its own:
//   - the same resource twice in one request: INVALID_REQUEST for each;
//   - a key twice, or a null value: INVALID_REQUEST (Kafka's checks);
//   - TOPIC: INVALID_TOPIC_EXCEPTION / UNKNOWN_TOPIC_OR_PARTITION as in
//     DescribeConfigs; a key the log does not honour or a bad value:
//     INVALID_CONFIG (log.ValidateTopicConfigs, the same rules as gRPC and
//     CreateTopics). Applied with log.Manager.UpdateTopicConfigs.
//   - BROKER (our node ID or empty): every broker config is read-only, so
//     any config gets INVALID_CONFIG; an empty list succeeds (nothing to
//     change). Another broker name: INVALID_REQUEST.
//   - other resource types: INVALID_REQUEST.
//
// ValidateOnly runs every check and changes nothing.
//
// Version notes: v1 changes throttle semantics only; v2 is flexible.

import (
	"context"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/log"
)

func (s *Server) handleAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	resp.Resources = make([]kmsg.AlterConfigsResponseResource, len(req.Resources))
	alterEach(len(req.Resources),
		func(i int) resourceKey {
			return resourceKey{req.Resources[i].ResourceType, req.Resources[i].ResourceName}
		},
		func(i int) (int16, string) { return s.alterResource(ctx, req.Resources[i], req.ValidateOnly) },
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

// alterResource replaces one resource's configs; it returns an error code
// and message, or 0.
func (s *Server) alterResource(ctx context.Context, rr kmsg.AlterConfigsRequestResource, validateOnly bool) (int16, string) {
	configs := make(map[string]string, len(rr.Configs))
	seen := make(map[string]bool, len(rr.Configs))
	var nulls []string
	for _, c := range rr.Configs {
		if seen[c.Name] {
			return kerr.InvalidRequest.Code, msgDuplicateKeys
		}
		seen[c.Name] = true
		if c.Value == nil {
			nulls = append(nulls, c.Name)
			continue
		}
		configs[c.Name] = *c.Value
	}
	if len(nulls) > 0 {
		return kerr.InvalidRequest.Code, "Null value not supported for : " + strings.Join(nulls, ",")
	}
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if _, code, msg := s.topicResource(rr.ResourceName); code != 0 {
			return code, msg
		}
		if err := log.ValidateTopicConfigs(configs); err != nil || validateOnly {
			return errorCode(err), errorText(err)
		}
		err := s.cfg.Log.UpdateTopicConfigs(ctx, rr.ResourceName, func(map[string]string) (map[string]string, error) {
			return configs, nil
		})
		return errorCode(err), errorText(err)
	case kmsg.ConfigResourceTypeBroker:
		if code, msg := s.brokerResource(rr.ResourceName); code != 0 {
			return code, msg
		}
		names := make([]string, 0, len(configs))
		for k := range configs {
			names = append(names, k)
		}
		sort.Strings(names)
		if len(names) > 0 {
			return s.brokerAlterError(names[0])
		}
		return 0, ""
	default:
		return kerr.InvalidRequest.Code, "AlterConfigs supports only topic and broker resources, not resource type " + rr.ResourceType.String()
	}
}
