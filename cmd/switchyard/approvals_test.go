package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The approval policy is refused at start when it names an action that
// cannot be proposed, asks for a number of approvals out of range, or is
// configured twice.
func TestApprovalPolicyErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"mode toggle", []string{"--require-approval", "set_flag,set_system_mode"}, `action "set_system_mode" cannot require approval`},
		{"both", []string{"--require-approval", "set_flag", "--approval-policy", file("both.json", `{}`)}, "configure the approval policy in one place"},
		{"no file", []string{"--approval-policy", filepath.Join(dir, "missing.json")}, "approval policy: open"},
		{"not JSON", []string{"--approval-policy", file("yaml.json", "set_flag: 1")}, "must be a JSON object"},
		{"unknown key", []string{"--approval-policy", file("key.json", `{"set_flag": {"approvers": 2}}`)}, `unknown field "approvers"`},
		{"no approvals", []string{"--approval-policy", file("zero.json", `{"set_flag": {"break_glass": true}}`)}, "approvals must be 1 to 10, not 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, append([]string{"serve"}, tt.args...), func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// With --require-approval, a direct write of an action it names is
// refused with APPROVAL_REQUIRED and the change is proposed instead.
func TestRequireApproval(t *testing.T) {
	s := startServe(t, map[string]string{"SWITCHYARD_REQUIRE_APPROVAL": "set_flag"})
	defer s.stop()
	code, body := post(t, s, "/v1/admin/system/exam-mode", s.token,
		`{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"}`)
	if e, _ := body["error"].(map[string]any); code != http.StatusForbidden || e["code"] != "APPROVAL_REQUIRED" {
		t.Fatalf("direct write = %d %v, want 403 APPROVAL_REQUIRED", code, body)
	}
	code, body = post(t, s, "/v1/admin/changes", s.token,
		`{"action": "set_flag", "flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"}`)
	if code != http.StatusCreated || body["state"] != "proposed" || body["approvals_required"] != float64(1) {
		t.Fatalf("proposal = %d %v", code, body)
	}
}
