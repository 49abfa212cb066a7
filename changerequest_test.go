package switchyard_test

import (
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// A request is due for the scheduler when it must apply (approved: at its
// last approval or its apply_at, whichever is later, unless it expires
// first), expire (proposed with an expires_at) or revert (applied with a
// revert_at, once); and Next says what is scheduled for it.
func TestChangeRequestDue(t *testing.T) {
	t0 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	at := func(h int) *time.Time { x := t0.Add(time.Duration(h) * time.Hour); return &x }
	approved := []switchyard.Approval{{Actor: "bob", At: *at(1)}}
	tests := []struct {
		name   string
		cr     switchyard.ChangeRequest
		due    *time.Time
		next   string
		nextAt *time.Time
	}{
		{"proposed, no times", switchyard.ChangeRequest{State: switchyard.ChangeProposed}, nil, "", nil},
		{"proposed, expiring", switchyard.ChangeRequest{State: switchyard.ChangeProposed, ExpiresAt: at(5)}, at(5), switchyard.NextExpire, at(5)},
		{"proposed, scheduled", switchyard.ChangeRequest{State: switchyard.ChangeProposed, ApplyAt: at(2), ExpiresAt: at(5)}, at(5), switchyard.NextApply, at(2)},
		{"approved at once", switchyard.ChangeRequest{State: switchyard.ChangeApproved, CreatedAt: t0}, &t0, switchyard.NextApply, &t0},
		{"approved late", switchyard.ChangeRequest{State: switchyard.ChangeApproved, CreatedAt: t0, ApplyAt: at(-1), Approvals: approved}, at(1), switchyard.NextApply, at(1)},
		{"approved, scheduled", switchyard.ChangeRequest{State: switchyard.ChangeApproved, CreatedAt: t0, ApplyAt: at(2), Approvals: approved}, at(2), switchyard.NextApply, at(2)},
		{"approved, expiring first", switchyard.ChangeRequest{State: switchyard.ChangeApproved, CreatedAt: t0, ApplyAt: at(3), ExpiresAt: at(2)}, at(2), switchyard.NextApply, at(3)},
		{"applied, time-boxed", switchyard.ChangeRequest{State: switchyard.ChangeApplied, RevertAt: at(4)}, at(4), switchyard.NextRevert, at(4)},
		{"applied, reverted", switchyard.ChangeRequest{State: switchyard.ChangeApplied, RevertAt: at(4), Revert: switchyard.RevertDone}, nil, "", nil},
		{"failed", switchyard.ChangeRequest{State: switchyard.ChangeFailed, ApplyAt: at(2), RevertAt: at(4)}, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			due, ok := tt.cr.DueAt()
			if ok != (tt.due != nil) || ok && !due.Equal(*tt.due) {
				t.Errorf("DueAt = %v, %v; want %v", due, ok, tt.due)
			}
			next, at, ok := tt.cr.Next()
			if next != tt.next || ok != (tt.nextAt != nil) || ok && !at.Equal(*tt.nextAt) {
				t.Errorf("Next = %q at %v, want %q at %v", next, at, tt.next, tt.nextAt)
			}
		})
	}
}
