package store

import (
	"context"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// ChangeRequests keeps change requests (switchyard.ChangeRequest): changes
// proposed instead of applied, with their approvals and schedules. A
// request and the audit entry of each of its transitions are written in one
// atomic step, so its history and the audit log never disagree, and the
// scheduler's claims make each due transition happen once, however many
// replicas claim.
type ChangeRequests interface {
	// ProposeChange stores cr as a new request, numbered by the store,
	// with the event of attempt a in its history, and appends a's applied
	// audit entry (its target the new request), in one atomic step.
	ProposeChange(ctx context.Context, cr switchyard.ChangeRequest, a Attempt) (switchyard.ChangeRequest, AuditEntry, error)
	// ChangeRequest returns request id, or NOT_FOUND.
	ChangeRequest(ctx context.Context, id int64) (switchyard.ChangeRequest, error)
	// ChangeRequests lists the requests q asks for.
	ChangeRequests(ctx context.Context, q ChangeQuery) ([]switchyard.ChangeRequest, error)
	// MoveChange moves request id on by m (see Moved) while holding it, so
	// moves of one request happen one after the other, and appends m's
	// audit entry, in one atomic step. When m.Step refuses, only a
	// rejected audit entry is stored, and the refusal is returned.
	MoveChange(ctx context.Context, id int64, m Move) (switchyard.ChangeRequest, AuditEntry, error)
	// ClaimDue claims the request q asks for, if it is due at q.Now
	// (ChangeRequest.DueAt), and calls work with it while it is claimed:
	// no other ClaimDue, on any replica, claims it meanwhile, and a
	// MoveChange of it waits. The move work returns, if any, is made as
	// MoveChange makes it, in the claim's own atomic step; a claim that
	// ends without it (the process died) leaves the request due for the
	// next claim. ClaimDue returns the ID of the request claimed, 0 when
	// none was due or every due one was claimed elsewhere.
	ClaimDue(ctx context.Context, q DueQuery, work func(switchyard.ChangeRequest) (Move, bool)) (int64, error)
}

// ChangeQuery asks for change requests: at most Limit (clamped as
// ClampLimit clamps an audit page), newest first with an ID below Before
// (0: from the newest), in State ("" for any). Scheduled asks instead for
// those with a next step (ChangeRequest.Next), soonest first, from the
// first (Before does not apply).
type ChangeQuery struct {
	State     switchyard.ChangeState
	Scheduled bool
	Limit     int
	Before    int64
}

// DueQuery asks ClaimDue for a request due at Now: request ID, or, when ID
// is 0, the due request with the lowest ID above After. The scheduler
// walks every due request once a pass, in the order they were proposed,
// by claiming after the ID it claimed last.
type DueQuery struct {
	Now   time.Time
	ID    int64
	After int64
}

// Move is one transition of a change request: the attempt that makes it,
// as its audit entry records it (the store names the request as its
// target), and Step, which changes the request, or refuses the
// transition (CHANGE_REQUEST_STATE, for one its state does not allow).
type Move struct {
	Attempt
	// At is when the transition happens, as the caller's clock says: the
	// time of its event in the request's history.
	At   time.Time
	Step func(cr *switchyard.ChangeRequest) error
	// Note says what the transition did, for its event.
	Note string
}

// Moved returns cr moved on by m: a copy changed by m.Step, with m's event
// at the end of its history, and the audit entry's before and after (the
// request's state around the move); or Step's refusal. Every store moves
// requests through it, so they move alike.
func Moved(cr switchyard.ChangeRequest, m Move) (next switchyard.ChangeRequest, before, after any, err error) {
	next = cr.Clone()
	if err := m.Step(&next); err != nil {
		return switchyard.ChangeRequest{}, nil, nil, err
	}
	next.History = append(next.History, switchyard.ChangeEvent{At: m.At.UTC(), Actor: m.Actor, Action: m.Action, Reason: m.Reason, Note: m.Note})
	return next, changeView(cr), changeView(next), nil
}

// Proposed returns cr as ProposeChange stores it, numbered id and
// proposed by a, and the audit entry's after: the request.
func Proposed(cr switchyard.ChangeRequest, id int64, a Attempt) (switchyard.ChangeRequest, any) {
	cr.ID = id
	cr.History = []switchyard.ChangeEvent{{At: cr.CreatedAt.UTC(), Actor: a.Actor, Action: a.Action, Reason: a.Reason}}
	after := cr
	after.History = nil
	return cr, after
}

// changeView is what an audit entry records of a request around a move.
func changeView(cr switchyard.ChangeRequest) any {
	approvers := make([]string, len(cr.Approvals))
	for i, a := range cr.Approvals {
		approvers[i] = a.Actor
	}
	return struct {
		State           switchyard.ChangeState `json:"state"`
		Approvals       []string               `json:"approvals"`
		Held            bool                   `json:"held,omitempty"`
		AppliedRevision int64                  `json:"applied_revision,omitempty"`
		Revert          string                 `json:"revert,omitempty"`
		RevertRevision  int64                  `json:"revert_revision,omitempty"`
	}{cr.State, approvers, cr.Held, cr.AppliedRevision, cr.Revert, cr.RevertRevision}
}
