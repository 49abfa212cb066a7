package control

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// newCore is a core over a fresh demo store, and the store.
func newCore(t *testing.T) (*Core, *memory.Store) {
	t.Helper()
	st := memory.NewDemo()
	return New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour}, st), st
}

// examMode is an admin's change turning EXAM_MODE on, as a surface
// decodes it.
func examMode(on bool) Change {
	phrase := "DISABLE EXAM MODE"
	if on {
		phrase = "ENABLE EXAM MODE"
	}
	return Change{Actor: "admin:alice", Role: switchyard.RoleAdmin, RequestID: "r-1", Action: "set_flag", Target: switchyard.ExamMode,
		Reason: "exam at 09:00", Phrase: phrase,
		Plan: func() (Plan, error) { on := on; return SystemFlagPlan(switchyard.ExamMode, &on, "value") }}
}

func evaluate(t *testing.T, c *Core, session, key string) evaluator.Result {
	t.Helper()
	ev, err := c.Evaluation(context.Background(), "", session)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Result(key, nil)
}

// Every refusal happens before the store is changed, says why with its
// code, and is in the audit log with who asked.
func TestAdmissionRefusesAndRecords(t *testing.T) {
	planned := false
	tests := []struct {
		name   string
		change func(*Change)
		code   switchyard.Code
	}{
		{"viewer", func(c *Change) { c.Role = switchyard.RoleViewer }, switchyard.CodeForbidden},
		{"undecodable", func(c *Change) { c.Invalid = switchyard.Errorf(switchyard.CodeInvalidRequest, "bad body") }, switchyard.CodeInvalidRequest},
		{"no reason", func(c *Change) { c.Reason = "  " }, switchyard.CodeReasonRequired},
		{"long reason", func(c *Change) { c.Reason = strings.Repeat("é", switchyard.MaxReasonLength+1) }, switchyard.CodeReasonRequired},
		{"wrong phrase", func(c *Change) { c.Phrase = "enable exam mode" }, switchyard.CodePhraseMismatch},
		{"plan refused", func(c *Change) {
			c.Plan = func() (Plan, error) { return SystemFlagPlan("EXAM", nil, "value") }
		}, switchyard.CodeUnknownFlag},
		{"not planned before the role is checked", func(c *Change) {
			c.Role = switchyard.RoleViewer
			c.Plan = func() (Plan, error) { planned = true; return Plan{}, nil }
		}, switchyard.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, st := newCore(t)
			ch := examMode(true)
			tt.change(&ch)
			_, err := c.Apply(context.Background(), ch)
			if got := switchyard.ErrorCode(err); got != tt.code {
				t.Fatalf("Apply = %v, want %s", err, tt.code)
			}
			if planned {
				t.Fatal("the plan ran for a refused role")
			}
			if r := evaluate(t, c, "", switchyard.ExamMode); r.Value != false {
				t.Fatalf("EXAM_MODE after a refusal = %v", r.Value)
			}
			entries, err := st.Audit(context.Background(), store.AuditQuery{Limit: 10})
			if err != nil || len(entries) != 1 {
				t.Fatalf("audit = %v, %v; want the one refusal", entries, err)
			}
			if e := entries[0]; e.Outcome != store.OutcomeRejected || e.Actor != "admin:alice" || e.Action != "set_flag" ||
				e.Target != switchyard.ExamMode || e.RequestID != "r-1" || !strings.HasPrefix(e.Why, string(tt.code)) {
				t.Fatalf("audit entry = %+v", e)
			}
		})
	}
}

// An admitted change is applied, audited and installed at once: the next
// evaluation sees it, without waiting for the cache TTL.
func TestApplyInstallsAtOnce(t *testing.T) {
	c, st := newCore(t)
	applied, err := c.Apply(context.Background(), examMode(true))
	if err != nil {
		t.Fatal(err)
	}
	if applied.Status.Revision != 2 || !applied.Status.Flags.ExamMode || applied.AuditSeq != 1 {
		t.Fatalf("applied = %+v", applied)
	}
	if r := evaluate(t, c, "", switchyard.ExamMode); r.Value != true || r.Metadata["revision"] != int64(2) {
		t.Fatalf("EXAM_MODE after the change = %+v", r)
	}
	if v, err := st.VerifyAudit(context.Background()); err != nil || !v.OK || v.Entries != 1 {
		t.Fatalf("audit = %+v, %v", v, err)
	}
}

// A stale expected revision is refused by the store, audited, and changes
// nothing.
func TestApplyAtAStaleRevision(t *testing.T) {
	c, _ := newCore(t)
	ch := examMode(true)
	ch.Expected = 7
	if _, err := c.Apply(context.Background(), ch); switchyard.ErrorCode(err) != switchyard.CodeRevisionConflict {
		t.Fatalf("Apply at revision 7 = %v, want REVISION_CONFLICT", err)
	}
}

// A dry run is admitted like a change but applies nothing and records
// nothing, refused or not.
func TestDryRunChangesAndRecordsNothing(t *testing.T) {
	c, st := newCore(t)
	for _, phrase := range []string{"ENABLE EXAM MODE", "wrong"} {
		ch := examMode(true)
		ch.DryRun, ch.Phrase = true, phrase
		_, err := c.Apply(context.Background(), ch)
		if (phrase == "wrong") != (err != nil) {
			t.Fatalf("dry run with phrase %q = %v", phrase, err)
		}
	}
	if entries, _ := st.Audit(context.Background(), store.AuditQuery{Limit: 10}); len(entries) != 0 {
		t.Fatalf("a dry run left %d audit entries", len(entries))
	}
	if r := evaluate(t, c, "", switchyard.ExamMode); r.Value != false {
		t.Fatal("a dry run changed EXAM_MODE")
	}
}

// The mode toggle goes through the same admission: without a reason it
// is refused and audited; a core built without mode switching refuses it
// with a reason.
func TestToggleIsAdmittedLikeEveryChange(t *testing.T) {
	c, st := newCore(t)
	ch := Change{Actor: "admin:alice", Role: switchyard.RoleAdmin, Action: "set_system_mode", Target: switchyard.SystemModeKey}
	if _, err := c.Toggle(context.Background(), ch, switchyard.ModeProduction, false); switchyard.ErrorCode(err) != switchyard.CodeReasonRequired {
		t.Fatalf("toggle without a reason = %v", err)
	}
	ch.Reason = "go live"
	ch.Phrase = "SWITCH TO PRODUCTION MODE"
	_, err := c.Toggle(context.Background(), ch, switchyard.ModeProduction, false)
	if switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest || !strings.Contains(err.Error(), "without mode switching") {
		t.Fatalf("toggle of a core without backends = %v", err)
	}
	entries, _ := st.Audit(context.Background(), store.AuditQuery{Limit: 10})
	if len(entries) != 2 || entries[0].Action != "set_system_mode" || entries[0].Outcome != store.OutcomeRejected {
		t.Fatalf("audit = %+v, want both refusals", entries)
	}
	if p := c.Posture(context.Background()); p.Mode != switchyard.ModeDemo || p.Switchable || len(p.Missing) != 0 {
		t.Fatalf("posture = %+v", p)
	}
}

// A session is pinned at first sight and keeps its revision's values
// after a change; a new session sees the change.
func TestSessionsKeepTheirRevision(t *testing.T) {
	c, _ := newCore(t)
	if r := evaluate(t, c, "s-1", switchyard.ExamMode); r.Value != false || r.Metadata["pinned"] != true {
		t.Fatalf("first sight = %+v", r)
	}
	if _, err := c.Apply(context.Background(), examMode(true)); err != nil {
		t.Fatal(err)
	}
	if r := evaluate(t, c, "s-1", switchyard.ExamMode); r.Value != false || r.Metadata["revision"] != int64(1) {
		t.Fatalf("pinned session after the change = %+v", r)
	}
	snap, created, err := c.Pin(context.Background(), "", "s-2", "u-2")
	if err != nil || !created || snap.Revision != 2 || !snap.ExamModeAtStart {
		t.Fatalf("Pin(s-2) = %+v, %v, %v", snap, created, err)
	}
	if again, created, err := c.Pin(context.Background(), "", "s-2", "other"); err != nil || created || again.UserID != "u-2" {
		t.Fatalf("Pin(s-2) again = %+v, %v, %v; want the first snapshot", again, created, err)
	}
	if _, err := c.Session(context.Background(), "unknown"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("Session(unknown) = %v", err)
	}
}

// Subscribers hear of a change as it is installed, with the flags it
// changed.
func TestSubscribersHearChanges(t *testing.T) {
	c, _ := newCore(t)
	sub := c.Subscribe(context.Background())
	defer sub.Close()
	if sub.Mode != switchyard.ModeDemo || sub.Revision != 1 {
		t.Fatalf("subscription = %+v", sub)
	}
	if _, err := c.Apply(context.Background(), examMode(true)); err != nil {
		t.Fatal(err)
	}
	ev := <-sub.Events
	if ev.Revision != 2 || ev.Mode != switchyard.ModeDemo || len(ev.Changed) != 1 || ev.Changed[0] != switchyard.ExamMode {
		t.Fatalf("event = %+v", ev)
	}
}

// TestChangeForAnotherMode: a change meant for one mode is neither applied
// nor recorded while another is served (the flag files of demo mode never
// reach production through a live switch).
func TestChangeForAnotherMode(t *testing.T) {
	c, st := newCore(t)
	ch := examMode(true)
	ch.Mode = switchyard.ModeProduction
	_, err := c.Apply(context.Background(), ch)
	if switchyard.AsError(err).Code != switchyard.CodeUnavailable {
		t.Fatalf("a change for production in demo mode: %v, want UNAVAILABLE", err)
	}
	entries, err := st.Audit(context.Background(), store.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rev, _ := st.Current(context.Background()); rev.Number != 1 || len(entries) != 0 {
		t.Fatalf("revision %d and %d audit rows after the refusal, want 1 and none", rev.Number, len(entries))
	}
	ch.Mode = switchyard.ModeDemo
	if _, err := c.Apply(context.Background(), ch); err != nil {
		t.Fatalf("the change for the mode served: %v", err)
	}
}
