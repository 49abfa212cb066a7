package storetest

import (
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// changeTime is the time the contract's change requests are proposed at.
var changeTime = time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)

// proposal is a change request turning exam mode on at apply.
func proposal(state switchyard.ChangeState, apply time.Time) switchyard.ChangeRequest {
	return switchyard.ChangeRequest{Action: "set_flag", Target: switchyard.ExamMode,
		Fields: json.RawMessage(`{"flag":"EXAM_MODE","value":true}`), Phrase: "ENABLE EXAM MODE", Reason: "exam",
		Proposer: "alice", BaseRevision: 1, ApplyAt: &apply, State: state, ApprovalsRequired: 1,
		Approvals: []switchyard.Approval{}, CreatedAt: changeTime}
}

func propose(t *testing.T, h Harness, cr switchyard.ChangeRequest) switchyard.ChangeRequest {
	t.Helper()
	a := attempt("alice")
	a.Action = switchyard.ActionPropose
	stored, e, err := h.Store.ProposeChange(ctx(t), cr, a)
	if err != nil {
		t.Fatal(err)
	}
	if e.Action != switchyard.ActionPropose || e.Target != switchyard.ChangeTarget(stored.ID) || e.Outcome != store.OutcomeApplied {
		t.Fatalf("proposal's audit entry = %+v", e)
	}
	return stored
}

// approval is bob's move approving a request.
func approval() store.Move {
	a := attempt("bob")
	a.Action = switchyard.ActionApprove
	return store.Move{Attempt: a, At: changeTime.Add(time.Minute), Note: "1 of 1", Step: func(cr *switchyard.ChangeRequest) error {
		if cr.State != switchyard.ChangeProposed {
			return switchyard.Errorf(switchyard.CodeChangeState, "change request %d is %s", cr.ID, cr.State)
		}
		cr.Approvals = append(cr.Approvals, switchyard.Approval{Actor: "bob", At: changeTime.Add(time.Minute)})
		cr.State = switchyard.ChangeApproved
		return nil
	}}
}

// applying is the scheduler's move applying a request.
func applying() store.Move {
	a := attempt("scheduler")
	a.Action = switchyard.ActionApply
	return store.Move{Attempt: a, At: changeTime.Add(time.Hour), Step: func(cr *switchyard.ChangeRequest) error {
		cr.State = switchyard.ChangeApplied
		return nil
	}}
}

// testChangeRequests: a proposal is numbered, kept whole and audited; a
// move changes it, appends its event and its audit entry; a move its
// state refuses stores only the rejected entry; lists come newest first,
// by state, or soonest scheduled first.
func testChangeRequests(t *testing.T, h Harness) {
	first := propose(t, h, proposal(switchyard.ChangeProposed, changeTime.Add(2*time.Hour)))
	second := propose(t, h, proposal(switchyard.ChangeProposed, changeTime.Add(time.Hour)))
	if first.ID != 1 || second.ID != 2 || len(first.History) != 1 || first.History[0].Action != switchyard.ActionPropose {
		t.Fatalf("proposed %+v and %+v", first, second)
	}
	got, err := h.Store.ChangeRequest(ctx(t), 1)
	if err != nil || got.Phrase != "ENABLE EXAM MODE" || string(got.Fields) != `{"flag":"EXAM_MODE","value":true}` ||
		!got.ApplyAt.Equal(changeTime.Add(2*time.Hour)) || !got.CreatedAt.Equal(changeTime) {
		t.Fatalf("ChangeRequest(1) = %+v, %v", got, err)
	}
	if _, err := h.Store.ChangeRequest(ctx(t), 9); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("ChangeRequest(9) = %v, want NOT_FOUND", err)
	}

	moved, e, err := h.Store.MoveChange(ctx(t), 1, approval())
	if err != nil || moved.State != switchyard.ChangeApproved || len(moved.History) != 2 || moved.History[1].Actor != "bob" ||
		moved.History[1].Note != "1 of 1" {
		t.Fatalf("MoveChange = %+v, %v", moved, err)
	}
	if e.Action != switchyard.ActionApprove || e.Target != "change:1" || e.Outcome != store.OutcomeApplied ||
		string(e.Before) != `{"state":"proposed","approvals":[]}` || string(e.After) != `{"state":"approved","approvals":["bob"]}` {
		t.Fatalf("move's audit entry = %+v (before %s, after %s)", e, e.Before, e.After)
	}
	_, e, err = h.Store.MoveChange(ctx(t), 1, approval())
	wantCode(t, err, switchyard.CodeChangeState)
	if e.Outcome != store.OutcomeRejected || e.Target != "change:1" {
		t.Fatalf("refused move's audit entry = %+v", e)
	}
	if got, _ := h.Store.ChangeRequest(ctx(t), 1); len(got.History) != 2 || got.State != switchyard.ChangeApproved {
		t.Fatalf("a refused move changed the request: %+v", got)
	}
	if _, _, err := h.Store.MoveChange(ctx(t), 9, approval()); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("MoveChange(9) = %v, want NOT_FOUND", err)
	}

	ids := func(q store.ChangeQuery) []int64 {
		t.Helper()
		crs, err := h.Store.ChangeRequests(ctx(t), q)
		if err != nil {
			t.Fatal(err)
		}
		out := []int64{}
		for _, cr := range crs {
			out = append(out, cr.ID)
		}
		return out
	}
	for _, tt := range []struct {
		q    store.ChangeQuery
		want []int64
	}{
		{store.ChangeQuery{}, []int64{2, 1}},
		{store.ChangeQuery{Before: 2}, []int64{1}},
		{store.ChangeQuery{Limit: 1}, []int64{2}},
		{store.ChangeQuery{State: switchyard.ChangeApproved}, []int64{1}},
		{store.ChangeQuery{State: switchyard.ChangeFailed}, []int64{}},
		// Request 2 applies at 09:00; request 1, approved at 08:01, at 10:00.
		{store.ChangeQuery{Scheduled: true}, []int64{2, 1}},
	} {
		if got := ids(tt.q); !equalIDs(got, tt.want) {
			t.Errorf("ChangeRequests(%+v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if n := auditLength(t, h); n != 4 {
		t.Fatalf("audit log holds %d entries, want 4 (2 proposals, an approval, a refusal)", n)
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testClaimDue: a request is claimed only once due, by one claimer at a
// time however many claim at once; its move is stored with the claim; a
// claim without a move leaves it due; a move of a request claimed waits
// for the claim to end.
func testClaimDue(t *testing.T, h Harness) {
	due := propose(t, h, proposal(switchyard.ChangeApproved, changeTime.Add(time.Hour)))
	later := propose(t, h, proposal(switchyard.ChangeApproved, changeTime.Add(2*time.Hour)))
	propose(t, h, proposal(switchyard.ChangeProposed, changeTime)) // not approved: never due to apply

	none := func(cr switchyard.ChangeRequest) (store.Move, bool) {
		t.Errorf("claimed %d, which is not due", cr.ID)
		return store.Move{}, false
	}
	if id, err := h.Store.ClaimDue(ctx(t), store.DueQuery{Now: changeTime.Add(59 * time.Minute)}, none); err != nil || id != 0 {
		t.Fatalf("ClaimDue before any is due = %d, %v", id, err)
	}
	at := store.DueQuery{Now: changeTime.Add(90 * time.Minute)}
	if id, err := h.Store.ClaimDue(ctx(t), store.DueQuery{Now: at.Now, ID: later.ID}, none); err != nil || id != 0 {
		t.Fatalf("ClaimDue of one not due = %d, %v", id, err)
	}
	if id, err := h.Store.ClaimDue(ctx(t), store.DueQuery{Now: at.Now, After: due.ID}, none); err != nil || id != 0 {
		t.Fatalf("ClaimDue after the one due = %d, %v", id, err)
	}
	if id, err := h.Store.ClaimDue(ctx(t), at, func(cr switchyard.ChangeRequest) (store.Move, bool) { return store.Move{}, false }); err != nil || id != due.ID {
		t.Fatalf("ClaimDue without a move = %d, %v; want %d", id, err, due.ID)
	}

	// Many claim at once: one works, the others find it claimed or done.
	var works atomic.Int32
	hold, held := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		id, err := h.Store.ClaimDue(ctx(t), at, func(cr switchyard.ChangeRequest) (store.Move, bool) {
			works.Add(1)
			close(held)
			<-hold
			return applying(), true
		})
		if err != nil || id != due.ID {
			t.Errorf("the holding claim = %d, %v", id, err)
		}
	})
	<-held
	for range 8 {
		wg.Go(func() {
			if _, err := h.Store.ClaimDue(ctx(t), at, func(cr switchyard.ChangeRequest) (store.Move, bool) {
				works.Add(1)
				return applying(), true
			}); err != nil {
				t.Error(err)
			}
		})
	}
	moved := make(chan switchyard.ChangeRequest)
	wg.Go(func() {
		cr, _, err := h.Store.MoveChange(ctx(t), due.ID, approval())
		if switchyard.ErrorCode(err) != switchyard.CodeChangeState {
			t.Errorf("approving a request claimed and applied meanwhile = %v, want CHANGE_REQUEST_STATE", err)
		}
		moved <- cr
	})
	select {
	case <-moved:
		t.Fatal("a move of a claimed request did not wait for the claim")
	case <-time.After(50 * time.Millisecond):
	}
	close(hold)
	<-moved
	wg.Wait()
	if n := works.Load(); n != 1 {
		t.Fatalf("the due request was worked on %d times, want once", n)
	}
	got, err := h.Store.ChangeRequest(ctx(t), due.ID)
	if err != nil || got.State != switchyard.ChangeApplied || got.History[len(got.History)-1].Action != switchyard.ActionApply {
		t.Fatalf("after the claims: %+v, %v", got, err)
	}
	if _, ok := got.DueAt(); ok {
		t.Fatal("an applied request without revert_at is still due")
	}
	if n := auditLength(t, h); n != 5 {
		t.Fatalf("audit log holds %d entries, want 5 (3 proposals, the move, the refused move)", n)
	}
}

// testIdempotentProposal: a proposal sent again with its key answers the
// request it proposed and stores nothing; the key with another request
// is refused, and that refusal is the caller's to record.
func testIdempotentProposal(t *testing.T, h Harness) {
	a := keyed("alice", "key-p", "hash-p")
	a.Action = switchyard.ActionPropose
	first, e1, err := h.Store.ProposeChange(ctx(t), proposal(switchyard.ChangeProposed, changeTime), a)
	if err != nil {
		t.Fatal(err)
	}
	again, e2, err := h.Store.ProposeChange(ctx(t), proposal(switchyard.ChangeProposed, changeTime), a)
	if err != nil || again.ID != first.ID || e2.Seq != e1.Seq {
		t.Fatalf("the retry = %+v, %+v, %v; want request %d, entry %d", again, e2, err, first.ID, e1.Seq)
	}
	a.RequestHash = "another"
	_, _, err = h.Store.ProposeChange(ctx(t), proposal(switchyard.ChangeProposed, changeTime), a)
	wantCode(t, err, switchyard.CodeIdempotencyKeyReused)
	if crs, _ := h.Store.ChangeRequests(ctx(t), store.ChangeQuery{}); len(crs) != 1 {
		t.Fatalf("%d requests stored, want 1", len(crs))
	}
	if n := auditLength(t, h); n != 1 {
		t.Fatalf("audit log holds %d entries, want 1", n)
	}
}
