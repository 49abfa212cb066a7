package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// requestCore is a core over a fresh demo store on clk, with policy, whose
// scheduler the test runs itself (runDue), so it knows when each step is
// taken.
func requestCore(t *testing.T, clk *clock, policy Policy) (*Core, *memory.Store) {
	t.Helper()
	st := memory.NewDemo(memory.WithClock(clk.now))
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clk.now, Approvals: policy}, st)
	c.backend.Load().stop()
	return c, st
}

// by is a change made by the named operator, an admin unless role says
// otherwise.
func by(name string, role ...switchyard.Role) Change {
	ch := Change{Actor: name, Role: switchyard.RoleAdmin, RequestID: "req-" + name}
	if len(role) > 0 {
		ch.Role = role[0]
	}
	return ch
}

// confirmed is ch with phrase and reason.
func confirmed(ch Change, phrase, reason string) Change {
	ch.Phrase, ch.Reason = phrase, reason
	return ch
}

// examProposal is alice's proposal to turn exam mode on, from apply to
// revert (each nil for none).
func examProposal(apply, revert *time.Time) Proposal {
	return Proposal{Change: confirmed(by("alice"), "ENABLE EXAM MODE", "final exams"), Action: "set_flag",
		Fields: json.RawMessage(`{"flag":"EXAM_MODE","value":true}`), ApplyAt: apply, RevertAt: revert}
}

func at(t time.Time) *time.Time { return &t }

func mustPropose(t *testing.T, c *Core, p Proposal) ChangeView {
	t.Helper()
	v, err := c.Propose(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func approve(t *testing.T, c *Core, id int64, who string) ChangeView {
	t.Helper()
	v, err := c.Approve(context.Background(), id, confirmed(by(who), "ENABLE EXAM MODE", "looks right"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func request(t *testing.T, c *Core, id int64) ChangeView {
	t.Helper()
	v, err := c.ChangeRequest(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// due runs the scheduler once, as its ticker would.
func due(t *testing.T, c *Core) {
	t.Helper()
	b := c.acquire()
	defer b.leave()
	if err := c.runDue(context.Background(), b, 0); err != nil {
		t.Fatal(err)
	}
}

func examOn(t *testing.T, c *Core) bool {
	t.Helper()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Flags.ExamMode
}

// actions lists the audit log's actions and outcomes, oldest first.
func actions(t *testing.T, st store.Store) []string {
	t.Helper()
	entries, err := st.Audit(context.Background(), store.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		out = append(out, entries[i].Action+" "+entries[i].Target+" "+entries[i].Outcome)
	}
	v, err := st.VerifyAudit(context.Background())
	if err != nil || !v.OK {
		t.Fatalf("audit verify = %+v, %v", v, err)
	}
	return out
}

func wantActions(t *testing.T, st store.Store, want ...string) {
	t.Helper()
	if got := actions(t, st); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The scheduled exam, four-eyes: alice proposes exam mode from 10:00 to
// 13:00, bob approves; nothing happens before 10:00, the change applies
// at 10:00 and is reverted at 13:00, each step one audit entry, and the
// chain verifies.
func TestScheduledExam(t *testing.T) {
	clk := newClock() // 09:00
	c, st := requestCore(t, clk, Policy{"set_flag": {Approvals: 1}})
	t0 := clk.now()
	v := mustPropose(t, c, examProposal(at(t0.Add(time.Hour)), at(t0.Add(4*time.Hour))))
	if v.ID != 1 || v.State != switchyard.ChangeProposed || v.ApprovalsRequired != 1 || v.BaseRevision != 1 {
		t.Fatalf("proposed %+v", v)
	}
	if v.Diff == nil || v.Diff.Before.System.ExamMode || !v.Diff.After.System.ExamMode || strings.Join(v.Diff.Changed, ",") != "EXAM_MODE" {
		t.Fatalf("diff = %+v", v.Diff)
	}
	clk.advance(30 * time.Minute)
	if v = approve(t, c, 1, "bob"); v.State != switchyard.ChangeApproved || examOn(t, c) {
		t.Fatalf("approved before its time: %+v, exam mode %v", v.ChangeRequest, examOn(t, c))
	}
	due(t, c)
	if examOn(t, c) {
		t.Fatal("applied before apply_at")
	}
	st2, _ := c.Status(context.Background())
	if len(st2.Scheduled) != 1 || st2.Scheduled[0].Step != switchyard.NextApply || !st2.Scheduled[0].At.Equal(t0.Add(time.Hour)) {
		t.Fatalf("status lists %+v as scheduled", st2.Scheduled)
	}

	clk.advance(30 * time.Minute) // 10:00
	due(t, c)
	v = request(t, c, 1)
	if !examOn(t, c) || v.State != switchyard.ChangeApplied || v.AppliedRevision != 2 || v.LateSeconds != 0 {
		t.Fatalf("at apply_at: exam mode %v, %+v", examOn(t, c), v.ChangeRequest)
	}
	if v.Diff == nil || v.Diff.Before.Revision != 1 || v.Diff.After.Revision != 2 {
		t.Fatalf("applied diff = %+v", v.Diff)
	}
	due(t, c) // nothing more is due until 13:00
	clk.advance(3 * time.Hour)
	due(t, c)
	if v = request(t, c, 1); examOn(t, c) || v.Revert != switchyard.RevertDone || v.RevertRevision != 3 {
		t.Fatalf("at revert_at: exam mode %v, %+v", examOn(t, c), v.ChangeRequest)
	}
	wantActions(t, st,
		"propose_change change:1 applied",
		"approve_change change:1 applied",
		"set_flag EXAM_MODE applied",
		"apply_change change:1 applied",
		"set_flag EXAM_MODE applied",
		"revert_change change:1 applied")
	var events []string
	for _, e := range v.History {
		events = append(events, e.Actor+" "+e.Action)
	}
	if strings.Join(events, ", ") != "alice propose_change, bob approve_change, alice apply_change, alice revert_change" {
		t.Fatalf("history: %s", strings.Join(events, ", "))
	}
}

// Every transition an operator makes, and who may make it: approvals by
// another admin (never the proposer, never a viewer, never twice),
// rejection by another admin, cancellation by anyone admin; a request
// that ended moves no more. Each refusal is recorded.
func TestTransitions(t *testing.T) {
	tests := []struct {
		name  string
		act   func(c *Core) (ChangeView, error)
		code  switchyard.Code
		state switchyard.ChangeState
	}{
		{"approved by another admin", func(c *Core) (ChangeView, error) {
			return c.Approve(context.Background(), 1, confirmed(by("bob"), "ENABLE EXAM MODE", "ok"))
		}, "", switchyard.ChangeApplied},
		{"self-approval", func(c *Core) (ChangeView, error) {
			return c.Approve(context.Background(), 1, confirmed(by("alice"), "ENABLE EXAM MODE", "ok"))
		}, switchyard.CodeForbidden, switchyard.ChangeProposed},
		{"approval by a viewer", func(c *Core) (ChangeView, error) {
			return c.Approve(context.Background(), 1, confirmed(by("victor", switchyard.RoleViewer), "ENABLE EXAM MODE", "ok"))
		}, switchyard.CodeForbidden, switchyard.ChangeProposed},
		{"approval without the phrase", func(c *Core) (ChangeView, error) {
			return c.Approve(context.Background(), 1, confirmed(by("bob"), "", "ok"))
		}, switchyard.CodePhraseMismatch, switchyard.ChangeProposed},
		{"approval without a reason", func(c *Core) (ChangeView, error) {
			return c.Approve(context.Background(), 1, confirmed(by("bob"), "ENABLE EXAM MODE", ""))
		}, switchyard.CodeReasonRequired, switchyard.ChangeProposed},
		{"approval of an unknown request", func(c *Core) (ChangeView, error) {
			return c.Approve(context.Background(), 9, confirmed(by("bob"), "ENABLE EXAM MODE", "ok"))
		}, switchyard.CodeNotFound, switchyard.ChangeProposed},
		{"rejected by another admin", func(c *Core) (ChangeView, error) {
			return c.Reject(context.Background(), 1, confirmed(by("bob"), "", "not today"))
		}, "", switchyard.ChangeRejected},
		{"rejected by the proposer", func(c *Core) (ChangeView, error) {
			return c.Reject(context.Background(), 1, confirmed(by("alice"), "", "not today"))
		}, switchyard.CodeForbidden, switchyard.ChangeProposed},
		{"cancelled by the proposer", func(c *Core) (ChangeView, error) {
			return c.Cancel(context.Background(), 1, confirmed(by("alice"), "", "wrong day"))
		}, "", switchyard.ChangeCancelled},
		{"cancelled by a viewer", func(c *Core) (ChangeView, error) {
			return c.Cancel(context.Background(), 1, confirmed(by("victor", switchyard.RoleViewer), "", "wrong day"))
		}, switchyard.CodeForbidden, switchyard.ChangeProposed},
		{"approved twice by one admin", func(c *Core) (ChangeView, error) {
			if _, err := c.Approve(context.Background(), 1, confirmed(by("bob"), "ENABLE EXAM MODE", "ok")); err != nil {
				return ChangeView{}, err
			}
			return c.Approve(context.Background(), 1, confirmed(by("bob"), "ENABLE EXAM MODE", "ok"))
		}, switchyard.CodeChangeState, switchyard.ChangeProposed},
		{"cancelled once ended", func(c *Core) (ChangeView, error) {
			if _, err := c.Reject(context.Background(), 1, confirmed(by("bob"), "", "no")); err != nil {
				return ChangeView{}, err
			}
			return c.Cancel(context.Background(), 1, confirmed(by("alice"), "", "wrong day"))
		}, switchyard.CodeChangeState, switchyard.ChangeRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			// Two approvals, so "approved twice" is not approved by the first.
			rule := Rule{Approvals: 1}
			if strings.Contains(tt.name, "twice") {
				rule.Approvals = 2
			}
			c, st := requestCore(t, clk, Policy{"set_flag": rule})
			mustPropose(t, c, examProposal(nil, nil))
			_, err := tt.act(c)
			if tt.code == "" && err != nil || tt.code != "" && switchyard.ErrorCode(err) != tt.code {
				t.Fatalf("error = %v, want %q", err, tt.code)
			}
			if got := request(t, c, 1).State; got != tt.state {
				t.Fatalf("state = %s, want %s", got, tt.state)
			}
			if tt.code != "" {
				entries := actions(t, st)
				if last := entries[len(entries)-1]; !strings.HasSuffix(last, " rejected") {
					t.Fatalf("the refusal is not the last audit entry: %v", entries)
				}
			}
		})
	}
}

// A request is checked as the change would be when proposed, and applies
// bound to its base revision: a change made meanwhile to what it touches
// makes it fail with REVISION_CONFLICT (recorded, never applied), one to
// anything else does not block it.
func TestStaleBase(t *testing.T) {
	clk := newClock()
	c, _ := requestCore(t, clk, Policy{"set_flag": {Approvals: 1}})
	mustPropose(t, c, examProposal(nil, nil))
	unrelated := freeze(true)
	unrelated.approved = true // as another approved request's would be
	if _, err := c.Apply(context.Background(), unrelated); err != nil {
		t.Fatal(err)
	}
	if v := approve(t, c, 1, "bob"); v.State != switchyard.ChangeApplied || !examOn(t, c) {
		t.Fatalf("after an unrelated change: %+v", v.ChangeRequest)
	}

	c, st := requestCore(t, clk, Policy{"set_flag": {Approvals: 1}})
	mustPropose(t, c, examProposal(nil, nil))
	ch := examMode(true)
	ch.approved = true // an exam mode set directly meanwhile, as another approved request would
	if _, err := c.Apply(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	if v := request(t, c, 1); !strings.Contains(v.Problem, "was changed since revision 1") || v.Diff != nil {
		t.Fatalf("pending stale request shows %+v", v)
	}
	v := approve(t, c, 1, "bob")
	if v.State != switchyard.ChangeFailed || !strings.HasPrefix(v.Why, "REVISION_CONFLICT") {
		t.Fatalf("stale request = %+v", v.ChangeRequest)
	}
	wantActions(t, st,
		"propose_change change:1 applied",
		"set_flag EXAM_MODE applied",
		"approve_change change:1 applied",
		"fail_change change:1 applied")

	// Proposed against a revision that moved on, for what it touches: refused.
	p := examProposal(nil, nil)
	p.Change.Expected = 1
	if _, err := c.Propose(context.Background(), p); switchyard.ErrorCode(err) != switchyard.CodeRevisionConflict {
		t.Fatalf("proposal on a stale base = %v, want REVISION_CONFLICT", err)
	}
}

// A time-boxed change is reverted at revert_at, unless what it touched
// was changed since by an operator: then the revert is skipped, recorded
// as skipped, and the operator's value stays.
func TestSkippedRevert(t *testing.T) {
	clk := newClock()
	c, st := requestCore(t, clk, nil) // no approval needed: applied at once
	t0 := clk.now()
	v := mustPropose(t, c, examProposal(nil, at(t0.Add(time.Hour))))
	if v.State != switchyard.ChangeApplied || !examOn(t, c) {
		t.Fatalf("a request needing no approval = %+v", v.ChangeRequest)
	}
	off := false
	ch := confirmed(by("carol"), "DISABLE EXAM MODE", "exam moved")
	ch.Action, ch.Target = "set_flag", switchyard.ExamMode
	ch.Plan = func() (Plan, error) { return SystemFlagPlan(switchyard.ExamMode, &off, "value") }
	if _, err := c.Apply(context.Background(), ch); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	due(t, c)
	if v = request(t, c, 1); v.Revert != switchyard.RevertSkipped || !strings.Contains(v.Why, "was changed since revision 2") {
		t.Fatalf("revert after a manual change = %+v", v.ChangeRequest)
	}
	if examOn(t, c) {
		t.Fatal("the operator's value did not stay")
	}
	wantActions(t, st,
		"propose_change change:1 applied",
		"set_flag EXAM_MODE applied",
		"apply_change change:1 applied",
		"set_flag EXAM_MODE applied",
		"skip_revert change:1 applied")
}

// ADMIN_FREEZE holds a due change: the hold is recorded once however
// often the scheduler looks, and the change applies, late and saying so,
// once the freeze is lifted, unless it expired meanwhile.
func TestAdminFreezeHolds(t *testing.T) {
	for _, expires := range []bool{false, true} {
		clk := newClock()
		c, st := requestCore(t, clk, nil)
		t0 := clk.now()
		adminFreeze := func(on bool) {
			t.Helper()
			ch := confirmed(by("carol"), switchyard.SystemFlagPhrase(switchyard.AdminFreeze, on), "incident review")
			ch.Action, ch.Target = "set_flag", switchyard.AdminFreeze
			ch.Plan = func() (Plan, error) { return SystemFlagPlan(switchyard.AdminFreeze, &on, "value") }
			if _, err := c.Apply(context.Background(), ch); err != nil {
				t.Fatal(err)
			}
		}
		adminFreeze(true)
		p := examProposal(at(t0.Add(time.Hour)), nil)
		if expires {
			p.ExpiresAt = at(t0.Add(2 * time.Hour))
		}
		mustPropose(t, c, p)
		clk.advance(time.Hour)
		due(t, c)
		due(t, c)
		if v := request(t, c, 1); v.State != switchyard.ChangeApproved || !v.Held || examOn(t, c) {
			t.Fatalf("under ADMIN_FREEZE: %+v", v.ChangeRequest)
		}
		clk.advance(90 * time.Minute)
		adminFreeze(false)
		due(t, c)
		v := request(t, c, 1)
		if expires {
			if v.State != switchyard.ChangeExpired || examOn(t, c) {
				t.Fatalf("expired while held: %+v", v.ChangeRequest)
			}
			continue
		}
		if v.State != switchyard.ChangeApplied || v.Held || v.LateSeconds != 5400 || !examOn(t, c) {
			t.Fatalf("after the freeze: %+v", v.ChangeRequest)
		}
		wantActions(t, st,
			"set_flag ADMIN_FREEZE applied",
			"propose_change change:1 applied",
			"hold_change change:1 applied",
			"set_flag ADMIN_FREEZE applied",
			"set_flag EXAM_MODE applied",
			"apply_change change:1 applied")
	}
}

// A proposal not approved by its expires_at expires.
func TestExpiry(t *testing.T) {
	clk := newClock()
	c, _ := requestCore(t, clk, Policy{"set_flag": {Approvals: 1}})
	p := examProposal(nil, nil)
	p.ExpiresAt = at(clk.now().Add(time.Hour))
	mustPropose(t, c, p)
	due(t, c)
	clk.advance(time.Hour)
	if _, err := c.Approve(context.Background(), 1, confirmed(by("bob"), "ENABLE EXAM MODE", "late")); switchyard.ErrorCode(err) != switchyard.CodeChangeState {
		t.Fatalf("approving after expires_at = %v, want CHANGE_REQUEST_STATE", err)
	}
	due(t, c)
	if v := request(t, c, 1); v.State != switchyard.ChangeExpired {
		t.Fatalf("after expires_at: %+v", v.ChangeRequest)
	}
}

// Times a request could not keep are refused when it is proposed, and so
// are fields its action does not take.
func TestProposalRefusals(t *testing.T) {
	clk := newClock()
	t0 := clk.now()
	tests := []struct {
		name  string
		edit  func(p *Proposal)
		field string
		// target is what the refusal's audit entry names.
		target string
	}{
		{"revert before apply", func(p *Proposal) { p.ApplyAt, p.RevertAt = at(t0.Add(2*time.Hour)), at(t0.Add(time.Hour)) }, "revert_at", "EXAM_MODE"},
		{"expired already", func(p *Proposal) { p.ExpiresAt = at(t0) }, "expires_at", "EXAM_MODE"},
		{"expires before apply", func(p *Proposal) { p.ApplyAt, p.ExpiresAt = at(t0.Add(2*time.Hour)), at(t0.Add(time.Hour)) }, "expires_at", "EXAM_MODE"},
		{"import time-boxed", func(p *Proposal) {
			p.Action, p.Change.Phrase = "import_flags", switchyard.ImportPhrase
			p.Fields = json.RawMessage(`{"format":"flagd","content":"{\"flags\":{\"f\":{\"state\":\"ENABLED\",\"variants\":{\"on\":true},\"defaultVariant\":\"on\"}}}"}`)
			p.RevertAt = at(t0.Add(time.Hour))
		}, "revert_at", "flags"},
		{"unknown action", func(p *Proposal) { p.Action = "set_system_mode" }, "action", ""},
		{"unknown field", func(p *Proposal) { p.Fields = json.RawMessage(`{"flag":"EXAM_MODE","value":true,"enabled":true}`) }, "enabled", ""},
		{"wrong type", func(p *Proposal) { p.Fields = json.RawMessage(`{"flag":"EXAM_MODE","value":"yes"}`) }, "value", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, st := requestCore(t, clk, nil)
			p := examProposal(nil, nil)
			tt.edit(&p)
			_, err := c.Propose(context.Background(), p)
			if e := switchyard.AsError(err); e.Code != switchyard.CodeInvalidRequest || e.Fields["field"] != tt.field {
				t.Fatalf("Propose = %v, want INVALID_REQUEST on %s", err, tt.field)
			}
			wantActions(t, st, "propose_change "+tt.target+" rejected")
		})
	}
}

// A proposal sent again with its idempotency key answers the request it
// made, however the runtime and the clock moved since, and records
// nothing; the key with another proposal is refused.
func TestProposalSentAgain(t *testing.T) {
	clk := newClock()
	c, st := requestCore(t, clk, Policy{"set_flag": {Approvals: 1}})
	p := examProposal(nil, nil)
	p.ExpiresAt = at(clk.now().Add(time.Minute))
	p.Change.IdempotencyKey, p.Change.RequestHash = "k-1", "h-1"
	first := mustPropose(t, c, p)
	clk.advance(time.Hour) // expires_at is past: a new proposal would be refused
	if again := mustPropose(t, c, p); again.ID != first.ID {
		t.Fatalf("sent again: request %d, want %d", again.ID, first.ID)
	}
	p.Change.RequestHash = "h-2"
	if _, err := c.Propose(context.Background(), p); switchyard.ErrorCode(err) != switchyard.CodeIdempotencyKeyReused {
		t.Fatalf("the key with another proposal = %v, want IDEMPOTENCY_KEY_REUSED", err)
	}
	wantActions(t, st, "propose_change change:1 applied", "propose_change EXAM_MODE rejected")
}

// A direct write of an action the policy asks approvals for is refused
// with APPROVAL_REQUIRED and recorded; break-glass lets one admin make a
// change that only makes the system safer at once, and records it as a
// change request whose review another admin gives.
func TestApprovalRequired(t *testing.T) {
	clk := newClock()
	c, st := requestCore(t, clk, Policy{"set_flag": {Approvals: 1, BreakGlass: true}, "set_profile": {Approvals: 2}})
	if _, err := c.Apply(context.Background(), examMode(false)); switchyard.ErrorCode(err) != switchyard.CodeApprovalRequired {
		t.Fatalf("turning exam mode off directly = %v, want APPROVAL_REQUIRED", err)
	}
	profile := confirmed(by("alice"), "SET PROFILE FALLBACK", "incident")
	profile.Action, profile.Target = "set_profile", switchyard.ProfileKey
	profile.Plan = func() (Plan, error) { return ProfilePlan(switchyard.ProfileFallback) }
	if _, err := c.Apply(context.Background(), profile); switchyard.ErrorCode(err) != switchyard.CodeApprovalRequired {
		t.Fatalf("a safer profile without break-glass = %v, want APPROVAL_REQUIRED", err)
	}
	ch := examMode(true)
	ch.IdempotencyKey, ch.RequestHash = "k-1", "h-1"
	for range 2 { // sent again with its key: recorded for review once
		if _, err := c.Apply(context.Background(), ch); err != nil {
			t.Fatalf("break-glass exam mode = %v", err)
		}
	}
	v := request(t, c, 1)
	if !examOn(t, c) || !v.BreakGlass || v.State != switchyard.ChangeApplied || v.AppliedRevision != 2 || v.Diff == nil {
		t.Fatalf("break-glass request = %+v", v)
	}
	if v, err := c.Approve(context.Background(), 1, confirmed(by("bob"), "ENABLE EXAM MODE", "reviewed")); err != nil || len(v.Approvals) != 1 {
		t.Fatalf("review = %+v, %v", v, err)
	}
	wantActions(t, st,
		"set_flag EXAM_MODE rejected",
		"set_profile runtime.profile rejected",
		"set_flag EXAM_MODE applied",
		"break_glass change:1 applied",
		"approve_change change:1 applied")
}

// Pending schedules live in the store: a core started over it after
// another stopped takes them over, and runs one whose time passed while
// no core ran, late, saying how late.
func TestRestartWithPendingSchedules(t *testing.T) {
	clk := newClock()
	st := memory.NewDemo(memory.WithClock(clk.now))
	first := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clk.now}, st)
	first.backend.Load().stop()
	mustPropose(t, first, examProposal(at(clk.now().Add(time.Hour)), nil))
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk.advance(3 * time.Hour) // every replica was down at apply_at
	second := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clk.now}, st)
	second.backend.Load().stop()
	due(t, second)
	if v := request(t, second, 1); v.State != switchyard.ChangeApplied || v.LateSeconds != 7200 || !strings.Contains(v.History[len(v.History)-1].Note, "2h0m0s late") {
		t.Fatalf("after the restart: %+v", v.ChangeRequest)
	}
}

// TestSchedulerInRealTime runs the core's own scheduler on the real clock:
// a change scheduled a second ahead applies within a second of its time,
// and is reverted as its revert_at comes.
func TestSchedulerInRealTime(t *testing.T) {
	c, _ := newCore(t)
	defer c.Close(context.Background())
	now := time.Now()
	mustPropose(t, c, examProposal(at(now.Add(time.Second)), at(now.Add(2*time.Second))))
	waitFor := func(what string, ok func(v ChangeView) bool) ChangeView {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			v := request(t, c, 1)
			if ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never happened: %+v", what, v.ChangeRequest)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	v := waitFor("apply", func(v ChangeView) bool { return v.State == switchyard.ChangeApplied })
	if late := v.AppliedAt.Sub(*v.ApplyAt); late < 0 || late > time.Second {
		t.Fatalf("applied %v after apply_at", late)
	}
	waitFor("revert", func(v ChangeView) bool { return v.Revert == switchyard.RevertDone })
	if examOn(t, c) {
		t.Fatal("exam mode is still on after the revert")
	}
}
