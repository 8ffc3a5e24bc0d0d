package groups

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestCheckTxnCommit(t *testing.T) {
	h := newGroupHarness(t, nil)
	check := func(member string, instance *string, generation int32) int16 {
		return h.c.CheckTxnCommit(context.Background(), "g", member, instance, generation)
	}
	// No group yet.
	if code := check("", nil, -1); code != 0 {
		t.Fatalf("anonymous commit to a missing group: %v", kerr.ErrorForCode(code))
	}
	if code := check("m", nil, 3); code != kerr.IllegalGeneration.Code {
		t.Fatalf("generation to a missing group: %v", kerr.ErrorForCode(code))
	}
	id := h.newMemberID()
	gen, _ := h.stableGroup(id)
	other := "x"
	cases := []struct {
		name       string
		member     string
		instance   *string
		generation int32
		want       int16
	}{
		{"anonymous", "", nil, -1, 0},
		{"current member", id, nil, gen, 0},
		{"old generation", id, nil, gen - 1, kerr.IllegalGeneration.Code},
		{"unknown member", "nope", nil, gen, kerr.UnknownMemberID.Code},
		{"member without generation", id, nil, -1, kerr.IllegalGeneration.Code},
		{"instance of another member", "nope", &other, gen, kerr.UnknownMemberID.Code},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code := check(tc.member, tc.instance, tc.generation); code != tc.want {
				t.Fatalf("got %v, want %v", kerr.ErrorForCode(code), kerr.ErrorForCode(tc.want))
			}
		})
	}
	// A rebalance does not refuse the current generation's commit
	// (OffsetCommit gets REBALANCE_IN_PROGRESS while the group completes
	// it).
	next := h.join(joinReq(4, id)).answered(t, 0).Generation
	h.wantState(stateCompletingRebalance, next)
	if code := check(id, nil, next); code != 0 {
		t.Fatalf("during a rebalance: %v", kerr.ErrorForCode(code))
	}
}
