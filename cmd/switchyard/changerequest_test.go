package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
)

// The named admins of the four-eyes server.
const (
	proposerSecret = "cli-test-alice-secret"
	approverSecret = "cli-test-bob-secret"
)

// fourEyesServer starts switchyard serve in demo mode with two named
// admins, alice and bob, and a policy that asks another admin's approval
// of system flag changes; it returns alice's environment.
func fourEyesServer(t *testing.T) map[string]string {
	t.Helper()
	s := startServe(t, map[string]string{
		"SWITCHYARD_TOKENS":           "alice:admin:" + proposerSecret + ",bob:admin:" + approverSecret,
		"SWITCHYARD_REQUIRE_APPROVAL": "set_flag",
	})
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop the server: %v", err)
		}
	})
	return map[string]string{"SWITCHYARD_SERVER": s.url, "SWITCHYARD_TOKEN": proposerSecret}
}

// A scheduled exam at a terminal: alice proposes exam mode for 09:00
// tomorrow, cannot approve it herself, bob reads its diff and approves it
// with its phrase, and the status, list and show say it is scheduled.
func TestChangeRequestAtTheTerminal(t *testing.T) {
	alice := fourEyesServer(t)
	bob := with(alice, "SWITCHYARD_TOKEN", approverSecret)
	nine := time.Now().Add(24 * time.Hour).Truncate(time.Hour).UTC()
	at := nine.Format(time.RFC3339)

	r := operate(t, alice, "ENABLE EXAM MODE\n", "change", "propose", "exam-mode", "on", "--apply-at", at, "--reason", "final exams")
	if r.err != nil {
		t.Fatalf("propose: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(squeeze(r.stderr), "EXAM_MODE off → on") || !strings.Contains(r.stderr, "To propose it, type: ENABLE EXAM MODE\n> ") {
		t.Errorf("propose showed no effect or prompt:\n%s", r.stderr)
	}
	if want := "proposed: change 1 (set_flag EXAM_MODE) is proposed, 0 of 1 approvals, to apply at " + at + "\n"; r.stdout != want {
		t.Errorf("propose printed %q, want %q", r.stdout, want)
	}

	r = operate(t, alice, "", "change", "approve", "1", "--reason", "mine", "--phrase", "ENABLE EXAM MODE")
	if r.code != exitRefused || !strings.Contains(r.err.Error(), "FORBIDDEN") {
		t.Fatalf("self-approval: exit %d, %v; want 1 FORBIDDEN", r.code, r.err)
	}
	r = operate(t, bob, "enable exam mode\n", "change", "approve", "1", "--reason", "checked")
	if r.code != exitRefused || !strings.Contains(r.err.Error(), "PHRASE_MISMATCH") {
		t.Fatalf("approval with a wrong phrase: exit %d, %v; want 1 PHRASE_MISMATCH", r.code, r.err)
	}
	r = operate(t, bob, "ENABLE EXAM MODE\n", "change", "approve", "1", "--reason", "checked with the exams office")
	if r.err != nil {
		t.Fatalf("approve: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{"proposed by alice", "EXAM_MODE off → on", "To approve it, type: ENABLE EXAM MODE\n> "} {
		if !strings.Contains(squeeze(r.stderr), want) {
			t.Errorf("approve showed no %q:\n%s", want, r.stderr)
		}
	}
	if want := "approved: change 1 (set_flag EXAM_MODE) is approved, to apply at " + at + "\n"; r.stdout != want {
		t.Errorf("approve printed %q, want %q", r.stdout, want)
	}

	r = operate(t, bob, "", "status")
	if want := at + " 1 apply set_flag EXAM_MODE approved"; r.err != nil || !strings.Contains(squeeze(r.stdout), want) {
		t.Errorf("status: %v, shows no %q:\n%s", r.err, want, r.stdout)
	}
	r = operate(t, bob, "", "status", "--output", "json")
	var st statusView
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.err != nil {
		t.Fatalf("status --output json: %v, %v\n%s", r.err, err, r.stdout)
	}
	if s := st.Runtime.Scheduled; len(s) != 1 || s[0].Change != 1 || s[0].Step != "apply" || !s[0].At.Equal(nine) {
		t.Errorf("scheduled = %+v, want change 1 to apply at %s", s, at)
	}

	r = operate(t, bob, "", "change", "list", "--output", "json")
	var list []switchyard.ChangeRequest
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || r.err != nil {
		t.Fatalf("change list --output json: %v, %v\n%s", r.err, err, r.stdout)
	}
	if len(list) != 1 || list[0].State != switchyard.ChangeApproved || len(list[0].Approvals) != 1 || list[0].Approvals[0].Actor != "bob" {
		t.Errorf("change list = %+v, want change 1 approved by bob", list)
	}
	if r = operate(t, bob, "", "change", "list", "--state", "proposed", "--output", "json"); r.err != nil || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("change list --state proposed: %v, %q; want []", r.err, r.stdout)
	}
	r = operate(t, bob, "", "change", "list")
	if want := "1 approved set_flag EXAM_MODE alice 1/1 " + at + " final exams"; r.err != nil || !strings.Contains(squeeze(r.stdout), want) {
		t.Errorf("change list: %v, shows no %q:\n%s", r.err, want, r.stdout)
	}

	r = operate(t, bob, "", "change", "show", "1", "--output", "json")
	var shown client.ChangeRequest
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || r.err != nil {
		t.Fatalf("change show --output json: %v, %v\n%s", r.err, err, r.stdout)
	}
	if shown.Diff == nil || shown.Diff.Before.System.ExamMode || !shown.Diff.After.System.ExamMode || shown.Phrase != "ENABLE EXAM MODE" {
		t.Errorf("change show = %+v, want exam mode off → on", shown)
	}
	r = operate(t, bob, "", "change", "show", "1")
	for _, want := range []string{"change 1 (set_flag EXAM_MODE) is approved", "approve_change by bob", "From revision 1 it makes:", "EXAM_MODE off → on"} {
		if r.err != nil || !strings.Contains(squeeze(r.stdout), want) {
			t.Errorf("change show: %v, shows no %q:\n%s", r.err, want, r.stdout)
		}
	}
}

// Another admin rejects a request, its proposer cancels one, and what
// cannot run exits 2 without sending anything.
func TestChangeRequestRefusals(t *testing.T) {
	alice := fourEyesServer(t)
	bob := with(alice, "SWITCHYARD_TOKEN", approverSecret)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, args := range [][]string{
		{"change", "propose", "freeze", "on", "--reason", "drill", "--phrase", "ENABLE FREEZE UPDATES"},
		{"change", "propose", "profile", "set", "fallback", "--apply-at", later, "--reason", "drill", "--phrase", "SET PROFILE FALLBACK"},
	} {
		if r := operate(t, alice, "", args...); r.err != nil {
			t.Fatalf("%v: %v", args, r.err)
		}
	}
	if r := operate(t, bob, "", "change", "reject", "1", "--reason", "not today"); r.err != nil || r.stdout != "rejected: change 1 (set_flag FREEZE_UPDATES) is rejected\n" {
		t.Errorf("reject: %v, %q", r.err, r.stdout)
	}
	if r := operate(t, alice, "", "change", "cancel", "2", "--reason", "drill over"); r.err != nil || r.stdout != "cancelled: change 2 (set_profile runtime.profile) is cancelled\n" {
		t.Errorf("cancel: %v, %q", r.err, r.stdout)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"cancel a rejected request", []string{"change", "cancel", "1", "--reason", "r"}, exitRefused, "CHANGE_REQUEST_STATE"},
		{"unknown request", []string{"change", "show", "9"}, exitRefused, "NOT_FOUND"},
		{"wrong phrase", []string{"change", "propose", "exam-mode", "on", "--reason", "r", "--phrase", "EXAM"}, exitRefused, "PHRASE_MISMATCH"},
		{"unknown module", []string{"change", "propose", "override", "set", "ranking", "v1", "--reason", "r"}, exitRefused, "refused before sending, nothing was sent: UNKNOWN_MODULE"},
		{"mode cannot be proposed", []string{"change", "propose", "mode", "set", "production", "--reason", "r"}, exitUsage, "want the command of the change to propose: exam-mode, freeze, admin-freeze, profile set, override set, override disable, override enable, override clear"},
		{"arguments of the command", []string{"change", "propose", "exam-mode", "maybe", "--reason", "r"}, exitUsage, "want on or off"},
		{"not a time", []string{"change", "propose", "exam-mode", "on", "--apply-at", "tomorrow", "--reason", "r"}, exitUsage, `"tomorrow": use a time in RFC 3339`},
		{"no reason", []string{"change", "reject", "1"}, exitUsage, "--reason is required"},
		{"not an ID", []string{"change", "approve", "first", "--reason", "r"}, exitUsage, `"first": a change request's ID is a number`},
		{"unknown state", []string{"change", "list", "--state", "done"}, exitUsage, `"done": use one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := operate(t, bob, "", tt.args...)
			if r.code != tt.code || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("exit %d, %v; want %d and %q", r.code, r.err, tt.code, tt.want)
			}
		})
	}
	if r := operate(t, bob, "", "change", "list", "--output", "json"); r.err != nil || strings.Count(r.stdout, `"id"`) != 2 {
		t.Errorf("after the refusals the server holds other than the 2 requests: %v\n%s", r.err, r.stdout)
	}
}
