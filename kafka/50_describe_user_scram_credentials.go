package kafka

// DescribeUserScramCredentials (key 50): version 0.
//
// Lists users' SCRAM credentials from meta: per user, each mechanism with
// its iteration count (never a salt or a key). No users asked (null or
// empty) lists every user with a credential, sorted by name. A user asked
// for without credentials gets RESOURCE_NOT_FOUND, a user asked twice
// DUPLICATE_RESOURCE (once), as Kafka answers. A meta error answers the
// whole request with its code.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (s *Server) handleDescribeUserSCRAMCredentials(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	creds, err := s.cfg.Meta.ListScramCredentials(ctx)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = kmsg.StringPtr("reading SCRAM credentials failed")
		return resp, nil
	}
	infos := make(map[string][]kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo)
	var users []string // sorted: ListScramCredentials sorts by user
	for _, c := range creds {
		if _, ok := infos[c.User]; !ok {
			users = append(users, c.User)
		}
		infos[c.User] = append(infos[c.User], kmsg.DescribeUserSCRAMCredentialsResponseResultCredentialInfo{
			Mechanism: int8(c.Mechanism), Iterations: c.Iterations})
	}
	result := func(user string) kmsg.DescribeUserSCRAMCredentialsResponseResult {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = user
		if ci, ok := infos[user]; ok {
			res.CredentialInfos = ci
		} else {
			res.ErrorCode = kerr.ResourceNotFound.Code
			res.ErrorMessage = kmsg.StringPtr("Attempt to describe a user credential that does not exist")
		}
		return res
	}
	if len(req.Users) == 0 {
		for _, u := range users {
			resp.Results = append(resp.Results, result(u))
		}
		return resp, nil
	}
	count := make(map[string]int, len(req.Users))
	for _, u := range req.Users {
		count[u.Name]++
	}
	for _, u := range req.Users {
		switch n := count[u.Name]; {
		case n > 1:
			res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
			res.User = u.Name
			res.ErrorCode = kerr.DuplicateResource.Code
			res.ErrorMessage = kmsg.StringPtr("Cannot describe SCRAM credentials for the same user twice in a single request")
			resp.Results = append(resp.Results, res)
			count[u.Name] = -1 // answered once
		case n == 1:
			resp.Results = append(resp.Results, result(u.Name))
		}
	}
	return resp, nil
}
