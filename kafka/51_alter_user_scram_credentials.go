package kafka

// AlterUserScramCredentials (key 51): version 0.
//
// Adds, replaces and deletes users' SCRAM credentials in meta, so that
// kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[iterations=8192,
// password=...]' --entity-type users works. The client sends a salt and
// the salted password, never the password; the broker keeps the salt, the
// iterations, StoredKey and ServerKey (package sasl derives them).
//
// One result per user, in the order users first appear. A user's changes
// are checked before any is applied, and the first problem answers for
// the user, which then changes nothing: an empty name or salt, a salted
// password not the mechanism's hash size, or iterations outside [4096,
// 16384] is UNACCEPTABLE_CREDENTIAL; an unknown mechanism
// UNSUPPORTED_SASL_MECHANISM; the same (user, mechanism) twice in the
// request DUPLICATE_RESOURCE; deleting a credential that does not exist
// RESOURCE_NOT_FOUND. Deletions are applied before upsertions; each
// change is its own meta transaction.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamhouse/streamhouse/kafka/sasl"
	"github.com/streamhouse/streamhouse/meta"
)

// scramChange is one deletion or upsertion of a request.
type scramChange struct {
	mech   meta.ScramMechanism
	delete bool
	cred   meta.ScramCredential // for an upsertion
}

// scramUser collects one user's changes and its first error.
type scramUser struct {
	changes []scramChange
	code    int16
	msg     string
}

func (u *scramUser) fail(err *kerr.Error, msg string) {
	if u.code == 0 {
		u.code, u.msg = err.Code, msg
	}
}

func (s *Server) handleAlterUserSCRAMCredentials(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	var order []string
	users := make(map[string]*scramUser)
	seen := make(map[string]bool) // user + "\x00" + mechanism
	add := func(name string, mech int8) (*scramUser, bool) {
		u := users[name]
		if u == nil {
			u = &scramUser{}
			users[name] = u
			order = append(order, name)
		}
		switch m := meta.ScramMechanism(mech); {
		case name == "":
			u.fail(kerr.UnacceptableCredential, "Username must not be empty")
		case m.KeyLen() == 0:
			u.fail(kerr.UnsupportedSaslMechanism, "Unknown SCRAM mechanism")
		case seen[name+"\x00"+m.String()]:
			u.fail(kerr.DuplicateResource, "A user credential cannot be altered twice in the same request")
		default:
			seen[name+"\x00"+m.String()] = true
			return u, true
		}
		return u, false
	}
	for _, d := range req.Deletions {
		if u, ok := add(d.Name, d.Mechanism); ok {
			u.changes = append(u.changes, scramChange{mech: meta.ScramMechanism(d.Mechanism), delete: true})
		}
	}
	for _, up := range req.Upsertions {
		u, ok := add(up.Name, up.Mechanism)
		if !ok {
			continue
		}
		m := meta.ScramMechanism(up.Mechanism)
		switch {
		case up.Iterations < sasl.MinIterations:
			u.fail(kerr.UnacceptableCredential, "Too few iterations")
		case up.Iterations > sasl.MaxIterations:
			u.fail(kerr.UnacceptableCredential, "Too many iterations")
		case len(up.Salt) == 0:
			u.fail(kerr.UnacceptableCredential, "Salt must not be empty")
		case len(up.SaltedPassword) != m.KeyLen():
			u.fail(kerr.UnacceptableCredential, "Salted password has the wrong length for "+m.String())
		default:
			u.changes = append(u.changes, scramChange{mech: m,
				cred: sasl.CredentialFromSalted(up.Name, m, up.Salt, up.Iterations, up.SaltedPassword)})
		}
	}
	for _, name := range order {
		u := users[name]
		if u.code == 0 {
			s.applyScramChanges(ctx, name, u)
		}
		res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		res.User, res.ErrorCode = name, u.code
		if u.msg != "" {
			res.ErrorMessage = kmsg.StringPtr(u.msg)
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}

// applyScramChanges checks that u's deletions have something to delete,
// then applies them and its upsertions; a problem is set on u.
func (s *Server) applyScramChanges(ctx context.Context, name string, u *scramUser) {
	for _, c := range u.changes {
		if !c.delete {
			continue
		}
		if _, found, err := s.cfg.Meta.GetScramCredential(ctx, name, c.mech); err != nil {
			u.code, u.msg = errorCode(err), "reading SCRAM credentials failed"
			return
		} else if !found {
			u.fail(kerr.ResourceNotFound, "Attempt to delete a user credential that does not exist")
			return
		}
	}
	for _, c := range u.changes {
		var err error
		if c.delete {
			_, err = s.cfg.Meta.DeleteScramCredential(ctx, name, c.mech)
		} else {
			err = s.cfg.Meta.PutScramCredential(ctx, c.cred)
		}
		if err != nil {
			u.code, u.msg = errorCode(err), "writing SCRAM credentials failed"
			return
		}
	}
	s.logger.Info("kafka scram credentials altered", "user", name, "changes", len(u.changes))
}
