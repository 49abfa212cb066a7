package switchyard

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ChangeState is where a change request stands. A request is proposed,
// approved once the approvals its policy asks for have arrived (at once
// when it asks for none) and applied once approved and its time has come;
// or it ends rejected by an approver, cancelled by an admin, expired (its
// expires_at passed before it was applied) or failed (applying it was
// refused, e.g. what it changes was changed since its base revision).
type ChangeState string

// The states of a change request.
const (
	ChangeProposed  ChangeState = "proposed"
	ChangeApproved  ChangeState = "approved"
	ChangeApplied   ChangeState = "applied"
	ChangeRejected  ChangeState = "rejected"
	ChangeCancelled ChangeState = "cancelled"
	ChangeExpired   ChangeState = "expired"
	ChangeFailed    ChangeState = "failed"
)

// ChangeStates lists every state, in the order of a request's life.
var ChangeStates = []ChangeState{ChangeProposed, ChangeApproved, ChangeApplied,
	ChangeRejected, ChangeCancelled, ChangeExpired, ChangeFailed}

// Valid reports whether s is one of ChangeStates.
func (s ChangeState) Valid() bool { return slices.Contains(ChangeStates, s) }

// Pending reports whether a request in state s may still be applied:
// it is proposed or approved.
func (s ChangeState) Pending() bool { return s == ChangeProposed || s == ChangeApproved }

// The audit actions of a change request's transitions: each transition is
// one audit entry with one of these actions, whose target is the request
// (ChangeTarget). Applying a request, or reverting it, also makes the
// change itself, audited under the change's own action.
const (
	ActionPropose    = "propose_change"
	ActionApprove    = "approve_change"
	ActionReject     = "reject_change"
	ActionCancel     = "cancel_change"
	ActionExpire     = "expire_change"
	ActionApply      = "apply_change"
	ActionFail       = "fail_change"
	ActionHold       = "hold_change"
	ActionRevert     = "revert_change"
	ActionSkipRevert = "skip_revert"
	// ActionBreakGlass records a change a policy asks approvals for that
	// one admin applied at once, as break-glass: its review is pending.
	ActionBreakGlass = "break_glass"
)

// What became of a time-boxed change at its revert_at.
const (
	RevertDone    = "reverted"
	RevertSkipped = "skipped"
	RevertFailed  = "failed"
)

// ChangeTarget is the audit target of change request id's transitions.
func ChangeTarget(id int64) string { return changeTargetPrefix + strconv.FormatInt(id, 10) }

// ChangeTargetID returns the ID of the change request an audit target
// names (ChangeTarget), and false when it names none.
func ChangeTargetID(target string) (int64, bool) {
	s, ok := strings.CutPrefix(target, changeTargetPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil && id > 0
}

const changeTargetPrefix = "change:"

// ChangeRequest is a change proposed instead of applied (design §10): it
// is applied once the approvals its policy asks for have arrived and its
// apply_at has come, whichever is later, through the same admission as a
// direct write; a time-boxed one is reverted at its revert_at. Stores keep
// it whole; every transition appends one event to its history and one
// entry to the audit log.
type ChangeRequest struct {
	ID int64 `json:"id"`
	// Action and Target name the change as the audit log names a direct
	// write: set_flag of EXAM_MODE, set_profile of runtime.profile.
	Action string `json:"action"`
	Target string `json:"target"`
	// Fields are the fields the action's direct route takes, as a JSON
	// object ({"flag": "EXAM_MODE", "value": true}): the change is planned
	// from them again when it applies, on whichever replica applies it.
	Fields json.RawMessage `json:"fields"`
	// Phrase and Reason are the proposer's; an approver types the same
	// phrase.
	Phrase   string `json:"phrase"`
	Reason   string `json:"reason"`
	Proposer string `json:"proposer"`
	// BaseRevision is the revision the change was proposed against: it
	// applies only while what it changes is as it was there.
	BaseRevision int64       `json:"base_revision"`
	ApplyAt      *time.Time  `json:"apply_at,omitempty"`
	RevertAt     *time.Time  `json:"revert_at,omitempty"`
	ExpiresAt    *time.Time  `json:"expires_at,omitempty"`
	State        ChangeState `json:"state"`
	// ApprovalsRequired is how many admins other than the proposer must
	// approve the change, as the policy said when it was proposed.
	ApprovalsRequired int        `json:"approvals_required"`
	Approvals         []Approval `json:"approvals"`
	// BreakGlass marks a change applied at once by one admin, though the
	// policy asks approvals for its action, because it only made the
	// system safer; approvals after the fact are its review.
	BreakGlass bool `json:"break_glass,omitempty"`
	// Held says the change waits for ADMIN_FREEZE to be lifted.
	Held            bool       `json:"held,omitempty"`
	AppliedRevision int64      `json:"applied_revision,omitempty"`
	AppliedAt       *time.Time `json:"applied_at,omitempty"`
	// LateSeconds is how long after its time the change was applied, when
	// that was more than a second (every replica was down, ADMIN_FREEZE
	// held it).
	LateSeconds float64 `json:"late_seconds,omitempty"`
	// Revert is what became of a time-boxed change at its revert_at
	// (RevertDone, RevertSkipped, RevertFailed); empty until then.
	Revert         string `json:"revert,omitempty"`
	RevertRevision int64  `json:"revert_revision,omitempty"`
	// Why says why the request failed, or why its revert was skipped or
	// failed.
	Why       string        `json:"why,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	History   []ChangeEvent `json:"history"`
}

// Approval is one admin's approval of a change request.
type Approval struct {
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// ChangeEvent is one transition in a change request's history, as its
// audit entry records it.
type ChangeEvent struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Reason string    `json:"reason"`
	// Note says what the transition did: the revision it made, how late
	// it was, why it failed.
	Note string `json:"note,omitempty"`
}

// Clone returns a copy of cr that shares nothing a transition changes.
func (cr ChangeRequest) Clone() ChangeRequest {
	cr.Approvals = slices.Clone(cr.Approvals)
	cr.History = slices.Clone(cr.History)
	return cr
}

// Approved reports whether actor has approved the request.
func (cr *ChangeRequest) Approved(actor string) bool {
	return slices.ContainsFunc(cr.Approvals, func(a Approval) bool { return a.Actor == actor })
}

// ApplyDue returns when an approved request is due to apply: when its
// last approval arrived (when it was proposed, if it needed none), or at
// its apply_at, whichever is later.
func (cr *ChangeRequest) ApplyDue() time.Time {
	at := cr.CreatedAt
	if n := len(cr.Approvals); n > 0 && cr.Approvals[n-1].At.After(at) {
		at = cr.Approvals[n-1].At
	}
	if cr.ApplyAt != nil && cr.ApplyAt.After(at) {
		at = *cr.ApplyAt
	}
	return at
}

// DueAt returns when the scheduler must next act on the request, and
// false when it need not: an approved request at ApplyDue (or its
// expires_at, if sooner), a proposed one at its expires_at, an applied
// time-boxed one at its revert_at until reverted (or skipped).
func (cr *ChangeRequest) DueAt() (time.Time, bool) {
	switch cr.State {
	case ChangeProposed:
		if cr.ExpiresAt != nil {
			return *cr.ExpiresAt, true
		}
	case ChangeApproved:
		at := cr.ApplyDue()
		if cr.ExpiresAt != nil && cr.ExpiresAt.Before(at) {
			at = *cr.ExpiresAt
		}
		return at, true
	case ChangeApplied:
		if cr.RevertAt != nil && cr.Revert == "" {
			return *cr.RevertAt, true
		}
	}
	return time.Time{}, false
}

// The steps a pending request is scheduled to take next (ChangeRequest.Next).
const (
	NextApply  = "apply"
	NextRevert = "revert"
	NextExpire = "expire"
)

// Next returns what is scheduled next for the request and when: its
// apply (approved, or proposed with an apply_at, awaiting approval), its
// revert, or its expiry; false when nothing is.
func (cr *ChangeRequest) Next() (step string, at time.Time, ok bool) {
	switch cr.State {
	case ChangeProposed:
		if cr.ApplyAt != nil {
			return NextApply, *cr.ApplyAt, true
		}
		if cr.ExpiresAt != nil {
			return NextExpire, *cr.ExpiresAt, true
		}
	case ChangeApproved:
		return NextApply, cr.ApplyDue(), true
	case ChangeApplied:
		if cr.RevertAt != nil && cr.Revert == "" {
			return NextRevert, *cr.RevertAt, true
		}
	}
	return "", time.Time{}, false
}
