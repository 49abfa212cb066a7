package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// The tokens of the servers the operator commands are tested against.
const (
	operatorAdmin  = "cli-test-admin-secret"
	operatorViewer = "cli-test-viewer-secret"
)

// operatorServer starts switchyard serve in demo mode with an admin and a
// viewer token, stopped when the test ends, and returns the environment
// of an operator who uses it with the admin token.
func operatorServer(t *testing.T) map[string]string {
	t.Helper()
	s := startServe(t, map[string]string{"SWITCHYARD_TOKENS": "admin:" + operatorAdmin + ",viewer:" + operatorViewer})
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop the server: %v", err)
		}
	})
	return map[string]string{"SWITCHYARD_SERVER": s.url, "SWITCHYARD_TOKEN": operatorAdmin}
}

// with returns env with the given variables changed.
func with(env map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(env)+len(kv)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// result is what a command printed and how it ended.
type result struct {
	stdout, stderr string
	err            error
	code           int
}

// operate runs switchyard with args in the environment env, as an
// operator typing typed at the terminal.
func operate(t *testing.T, env map[string]string, typed string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	err := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(typed), &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err, code: exitCode(err)}
}

// spaces collapses runs of spaces, so tests read aligned columns as words.
var spaces = regexp.MustCompile(` {2,}`)

func squeeze(s string) string { return spaces.ReplaceAllString(s, " ") }

// auditEntries lists the audit log through the CLI, as JSON read back.
func auditEntries(t *testing.T, env map[string]string, args ...string) []client.AuditEntry {
	t.Helper()
	r := operate(t, env, "", append([]string{"audit", "list", "--output", "json"}, args...)...)
	if r.err != nil {
		t.Fatalf("audit list: %v", r.err)
	}
	var entries []client.AuditEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("audit list --output json: %v\n%s", err, r.stdout)
	}
	return entries
}

// The runbook at a terminal: each change shows what it makes different,
// asks for its phrase, and says what it applied.
func TestChangesAtTheTerminal(t *testing.T) {
	env := operatorServer(t)
	steps := []struct {
		args    []string
		typed   string
		effects []string
		applied string
	}{
		{[]string{"exam-mode", "on", "--reason", "final exams"}, "ENABLE EXAM MODE\n",
			[]string{"EXAM_MODE off → on"}, "EXAM_MODE on at revision 2 (audit entry 1)"},
		{[]string{"freeze", "on", "--reason", "mastery v1 writing bad scores"}, "ENABLE FREEZE UPDATES\n",
			[]string{"FREEZE_UPDATES off → on"}, "FREEZE_UPDATES on at revision 3 (audit entry 2)"},
		{[]string{"profile", "set", "fallback", "--reason", "roll back"}, "SET PROFILE FALLBACK\n",
			[]string{"runtime.profile primary → fallback", "module.mastery v1 → v0", "module.neo4j.enabled on → off"}, "profile fallback at revision 4 (audit entry 3)"},
		// Flags may follow the arguments.
		{[]string{"override", "set", "--reason", "v1 fixed", "mastery", "v1"}, "OVERRIDE MODULE mastery TO v1\n",
			[]string{"module.mastery v0 → v1", "override mastery none → version v1"}, "override of mastery (version v1) at revision 5 (audit entry 4)"},
		{[]string{"override", "disable", "search", "--reason", "search cluster down"}, "DISABLE MODULE search\n",
			[]string{"module.search.enabled on → off", "override search none → off"}, "override of search (off) at revision 6 (audit entry 5)"},
		{[]string{"override", "clear", "mastery", "--reason", "back to the profile"}, "CLEAR OVERRIDE mastery\n",
			[]string{"module.mastery v1 → v0", "override mastery version v1 → none"}, "override of mastery cleared at revision 7 (audit entry 6)"},
		{[]string{"admin-freeze", "on", "--reason", "incident review"}, "ENABLE ADMIN FREEZE\n",
			[]string{"ADMIN_FREEZE off → on"}, "ADMIN_FREEZE on at revision 8 (audit entry 7)"},
		{[]string{"admin-freeze", "off", "--reason", "review over"}, "DISABLE ADMIN FREEZE\r\n",
			[]string{"ADMIN_FREEZE on → off"}, "ADMIN_FREEZE off at revision 9 (audit entry 8)"},
		{[]string{"exam-mode", "off", "--reason", "exams over"}, "DISABLE EXAM MODE\n",
			[]string{"EXAM_MODE on → off"}, "EXAM_MODE off at revision 10 (audit entry 9)"},
	}
	for _, s := range steps {
		r := operate(t, env, s.typed, s.args...)
		if r.err != nil {
			t.Fatalf("%v: %v\n%s", s.args, r.err, r.stderr)
		}
		phrase := strings.TrimSpace(s.typed)
		if !strings.Contains(r.stderr, "To apply it, type: "+phrase+"\n> ") {
			t.Errorf("%v asked no phrase %q:\n%s", s.args, phrase, r.stderr)
		}
		for _, e := range s.effects {
			if !strings.Contains(squeeze(r.stderr), e) {
				t.Errorf("%v shows no %q before the change:\n%s", s.args, e, r.stderr)
			}
		}
		if want := "applied: " + s.applied + "\n"; r.stdout != want {
			t.Errorf("%v printed %q, want %q", s.args, r.stdout, want)
		}
	}
	entries := auditEntries(t, env)
	if len(entries) != len(steps) {
		t.Fatalf("the audit log holds %d entries, want %d", len(entries), len(steps))
	}
	for i, e := range entries {
		step := steps[len(steps)-1-i]
		if e.Outcome != "applied" || e.Phrase != strings.TrimSpace(step.typed) || e.Reason != step.args[slices.Index(step.args, "--reason")+1] {
			t.Errorf("audit entry %d = %+v, want the phrase and reason of %v", e.Seq, e, step.args)
		}
	}
	if r := operate(t, env, "", "audit", "verify"); r.err != nil || !strings.Contains(r.stdout, "audit chain intact: 9 entries") {
		t.Fatalf("audit verify: %v\n%s", r.err, r.stdout)
	}
}

// A change the server refuses exits 1 with the API's code and message; a
// command line that cannot run exits 2 and sends nothing; a server that
// does not answer exits 3. Only what was sent is in the audit log.
func TestRefusedChanges(t *testing.T) {
	env := operatorServer(t)
	missingFile := filepath.Join(t.TempDir(), "no-token")
	tests := []struct {
		name  string
		env   map[string]string
		typed string
		args  []string
		code  int
		want  []string
	}{
		{"wrong phrase typed", env, "enable exam mode\n", []string{"exam-mode", "on", "--reason", "r"}, exitRefused,
			[]string{`PHRASE_MISMATCH: phrase must be exactly "ENABLE EXAM MODE"`, `expected_phrase: "ENABLE EXAM MODE"`}},
		{"viewer", with(env, "SWITCHYARD_TOKEN", operatorViewer), "", []string{"freeze", "on", "--reason", "r", "--phrase", "ENABLE FREEZE UPDATES"}, exitRefused,
			[]string{"FORBIDDEN: the viewer role cannot change the runtime"}},
		{"stale revision", env, "", []string{"profile", "set", "shadow", "--reason", "r", "--phrase", "SET PROFILE SHADOW", "--if-revision", "99"}, exitRefused,
			[]string{"REVISION_CONFLICT: "}},
		{"nothing typed", env, "", []string{"exam-mode", "on", "--reason", "r"}, exitUsage,
			[]string{`no phrase typed, nothing was sent (scripts give --phrase "ENABLE EXAM MODE")`}},
		{"no reason", env, "ENABLE EXAM MODE\n", []string{"exam-mode", "on"}, exitUsage, []string{"--reason is required"}},
		{"blank reason", env, "ENABLE EXAM MODE\n", []string{"exam-mode", "on", "--reason", "  "}, exitUsage, []string{"--reason is required"}},
		{"no token", with(env, "SWITCHYARD_TOKEN", ""), "", []string{"freeze", "on", "--reason", "r"}, exitUsage, []string{"no token: set --token"}},
		{"missing token file", with(env, "SWITCHYARD_TOKEN", "", "SWITCHYARD_TOKEN_FILE", missingFile), "", []string{"status"}, exitUsage,
			[]string{"read the token file"}},
		{"two tokens", env, "", []string{"status", "--token", "a", "--token-file", missingFile}, exitUsage, []string{"--token and --token-file both given"}},
		{"not on or off", env, "", []string{"exam-mode", "maybe", "--reason", "r"}, exitUsage, []string{"want on or off"}},
		{"unknown flag", env, "", []string{"freeze", "on", "--force"}, exitUsage, []string{"flag provided but not defined: -force (switchyard freeze --help shows its flags)"}},
		{"unknown subcommand", env, "", []string{"override", "remove", "mastery"}, exitUsage, []string{`unknown command "override remove"`}},
		{"unknown module", env, "", []string{"override", "set", "ranking", "v1", "--reason", "r"}, exitRefused,
			[]string{`refused before sending, nothing was sent: UNKNOWN_MODULE: module "ranking" is not in the catalog`}},
		{"unknown version", env, "", []string{"override", "set", "mastery", "v9", "--reason", "r"}, exitRefused,
			[]string{`UNKNOWN_VERSION: module "mastery" has no version "v9"`, `allowed_versions: ["v0","v1"]`}},
		{"unknown profile", env, "", []string{"profile", "set", "turbo", "--reason", "r"}, exitRefused,
			[]string{`UNKNOWN_PROFILE: profile "turbo" is not defined`, `allowed_profiles: ["fallback","primary","shadow"]`}},
		{"no override to clear", env, "", []string{"override", "clear", "search", "--reason", "r"}, exitRefused,
			[]string{`NOT_FOUND: module "search" has no override`}},
		{"production requirements missing", env, "", []string{"mode", "set", "production", "--reason", "r"}, exitRefused,
			[]string{"PRODUCTION_REQUIREMENTS_MISSING: production mode needs database_url, database, migrations, redis_url, redis, token_secrets, state_dir"}},
		{"already in the mode", env, "", []string{"mode", "set", "demo", "--reason", "r"}, exitRefused, []string{"already serves demo mode"}},
		{"no server", with(env, "SWITCHYARD_SERVER", "http://127.0.0.1:1"), "", []string{"status"}, exitUnavailable,
			[]string{"no answer from http://127.0.0.1:1"}},
		{"not a server URL", with(env, "SWITCHYARD_SERVER", "127.0.0.1:8080"), "", []string{"status"}, exitUsage, []string{`server URL "127.0.0.1:8080"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := operate(t, tt.env, tt.typed, tt.args...)
			if r.code != tt.code || r.err == nil {
				t.Fatalf("exit code %d (%v), want %d", r.code, r.err, tt.code)
			}
			for _, w := range tt.want {
				if !strings.Contains(errorText(r.err), w) {
					t.Errorf("the error says\n%s\nwant %q in it", errorText(r.err), w)
				}
			}
		})
	}
	// Only the three refusals the server made are recorded: the rest were
	// never sent.
	entries := auditEntries(t, env)
	if len(entries) != 3 {
		t.Fatalf("the audit log holds %d entries, want the 3 refusals:\n%+v", len(entries), entries)
	}
	for i, want := range []string{"REVISION_CONFLICT", "FORBIDDEN", "PHRASE_MISMATCH"} {
		if e := entries[i]; e.Outcome != "rejected" || !strings.HasPrefix(e.Why, want) {
			t.Errorf("audit entry %d: %s %q, want rejected %s", e.Seq, e.Outcome, e.Why, want)
		}
	}
	if e := entries[2]; e.Phrase != "enable exam mode" {
		t.Errorf("the wrong phrase is recorded as %q, want what was typed", e.Phrase)
	}
}

// Scripts read every command's --output json back, and give the phrase
// with --phrase.
func TestJSONOutput(t *testing.T) {
	env := operatorServer(t)
	// A session pinned at revision 1, before the change.
	r := operate(t, env, "", "eval", "module.mastery", "--context", `{"sessionId": "s-1"}`, "targetingKey=learner-9", "--output", "json")
	var ev client.Evaluation
	if err := json.Unmarshal([]byte(r.stdout), &ev); r.err != nil || err != nil {
		t.Fatalf("eval: %v %v\n%s", r.err, err, r.stdout)
	}
	if ev.Key != "module.mastery" || ev.Value != "v1" || ev.Reason != "STATIC" || ev.Metadata["pinned"] != true {
		t.Fatalf("eval = %+v", ev)
	}

	r = operate(t, env, "", "profile", "set", "fallback", "--reason", "scripted", "--phrase", "SET PROFILE FALLBACK", "--output", "json")
	var applied client.Applied
	if err := json.Unmarshal([]byte(r.stdout), &applied); r.err != nil || err != nil {
		t.Fatalf("profile set: %v %v\n%s", r.err, err, r.stdout)
	}
	if applied.AuditSeq != 1 || applied.Status.Revision != 2 || applied.Status.Profile != "fallback" {
		t.Fatalf("profile set answered %+v", applied)
	}

	r = operate(t, with(env, "SWITCHYARD_TOKEN", operatorViewer), "", "status", "--output", "json")
	var status statusView
	if err := json.Unmarshal([]byte(r.stdout), &status); r.err != nil || err != nil {
		t.Fatalf("status: %v %v\n%s", r.err, err, r.stdout)
	}
	if status.Runtime.Revision != 2 || status.Runtime.Modules["mastery"].Version != "v0" || status.SystemMode.Mode != "demo" ||
		!status.Readiness.Ready || len(status.SystemMode.Missing) == 0 {
		t.Fatalf("status = runtime %+v, mode %+v, readiness %+v", status.Runtime, status.SystemMode, status.Readiness)
	}

	r = operate(t, env, "", "session", "show", "s-1", "--output", "json")
	var session sessionView
	if err := json.Unmarshal([]byte(r.stdout), &session); r.err != nil || err != nil {
		t.Fatalf("session show: %v %v\n%s", r.err, err, r.stdout)
	}
	if session.Session.Revision != 1 || session.Session.Modules["mastery"].Version != "v1" || session.Live.Modules["mastery"].Version != "v0" {
		t.Fatalf("session show = %+v beside %+v", session.Session, session.Live)
	}
	r = operate(t, env, "", "session", "show", "s-1")
	if !strings.Contains(squeeze(r.stdout), "module.mastery v1 v0 differs\n") || strings.Contains(squeeze(r.stdout), "module.mastery.enabled on on differs") {
		t.Fatalf("session show marks what differs wrongly:\n%s", r.stdout)
	}

	r = operate(t, env, "", "mode", "set", "production", "--force", "--reason", "go live later", "--phrase", "SWITCH TO PRODUCTION MODE", "--output", "json")
	var toggled client.Toggled
	if err := json.Unmarshal([]byte(r.stdout), &toggled); r.err != nil || err != nil {
		t.Fatalf("mode set --force: %v %v\n%s", r.err, err, r.stdout)
	}
	if toggled.Switched || !toggled.RestartRequired || toggled.Posture.Mode != "demo" || toggled.Posture.DesiredMode != "production" {
		t.Fatalf("mode set --force answered %+v", toggled)
	}

	r = operate(t, env, "", "audit", "verify", "--output", "json")
	var v client.Verification
	if err := json.Unmarshal([]byte(r.stdout), &v); r.err != nil || err != nil || !v.OK || v.Entries != 2 {
		t.Fatalf("audit verify: %v %v %+v", r.err, err, v)
	}
	entries := auditEntries(t, env, "--action", "set_system_mode")
	if len(entries) != 1 || entries[0].Reason != "go live later" {
		t.Fatalf("audit list --action set_system_mode = %+v", entries)
	}

	r = operate(t, env, "", "eval", "no-such-flag", "--output", "json")
	if err := json.Unmarshal([]byte(r.stdout), &ev); r.code != exitRefused || err != nil || ev.ErrorCode != "FLAG_NOT_FOUND" {
		t.Fatalf("eval of an unknown flag: exit %d, %+v, %v", r.code, ev, err)
	}
}

// The text a person reads: the status table and an evaluation.
func TestTextOutput(t *testing.T) {
	env := operatorServer(t)
	if r := operate(t, env, "", "override", "set", "mastery", "v0", "--reason", "r", "--phrase", "OVERRIDE MODULE mastery TO v0"); r.err != nil {
		t.Fatal(r.err)
	}
	r := operate(t, env, "", "status")
	for _, want := range []string{"revision 2 (", "ready ready\n", "mode demo (set by startup at ", "EXAM_MODE off\n", "profile primary\n",
		"MODULE VERSION ENABLED FROM\n", "mastery v0 on override (version v0)\n", "search v1 on profile\n"} {
		if !strings.Contains(squeeze(r.stdout), want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("status is coloured off a terminal:\n%q", r.stdout)
	}
	r = operate(t, env, "", "eval", "module.mastery", "targetingKey=learner-9")
	if want := "module.mastery = \"v0\"\nreason STATIC\nvariant v0\nmetadata pinned false\nmetadata revision 2\n"; squeeze(r.stdout) != want {
		t.Errorf("eval printed\n%s\nwant\n%s", r.stdout, want)
	}
}

// audit tail prints the newest entries, then each new one as it is
// written, until interrupted.
func TestAuditTail(t *testing.T) {
	env := operatorServer(t)
	if r := operate(t, env, "", "freeze", "on", "--reason", "before the tail", "--phrase", "ENABLE FREEZE UPDATES"); r.err != nil {
		t.Fatal(r.err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out storetest.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"audit", "tail", "--interval", "20ms", "--output", "json"}, func(k string) string { return env[k] },
			strings.NewReader(""), &out, io.Discard)
	}()
	waitFor := func(what string, ok func(lines []client.AuditEntry) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var lines []client.AuditEntry
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var e client.AuditEntry
				if json.Unmarshal([]byte(l), &e) == nil {
					lines = append(lines, e)
				}
			}
			if ok(lines) {
				return
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("audit tail printed no %s in 10s:\n%s", what, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("backlog", func(l []client.AuditEntry) bool { return len(l) == 1 && l[0].Reason == "before the tail" })
	if r := operate(t, env, "", "freeze", "off", "--reason", "during the tail", "--phrase", "ENABLE FREEZE UPDATES"); r.code != exitRefused {
		t.Fatalf("a wrong phrase: %v", r.err)
	}
	if r := operate(t, env, "", "freeze", "off", "--reason", "during the tail", "--phrase", "DISABLE FREEZE UPDATES"); r.err != nil {
		t.Fatal(r.err)
	}
	waitFor("new entries", func(l []client.AuditEntry) bool {
		return len(l) == 3 && l[1].Seq == 2 && l[1].Outcome == "rejected" && l[2].Seq == 3 && l[2].Outcome == "applied"
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("audit tail ended with %v, want nil once interrupted", err)
	}
}

// A change whose outcome the server could not learn exits 3 and says how
// to send it again; sent again with its key, it is applied once.
func TestUnknownOutcomeIsSentAgainWithItsKey(t *testing.T) {
	env := operatorServer(t)
	target, err := url.Parse(env["SWITCHYARD_SERVER"])
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var (
		mu      sync.Mutex
		keys    []string
		unknown = 3 // the client's attempts: each answered 504
	)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mu.Lock()
			keys = append(keys, r.Header.Get("Idempotency-Key"))
			lost := len(keys) <= unknown
			mu.Unlock()
			if lost {
				// The change is applied; its outcome is not told.
				proxy.ServeHTTP(httptest.NewRecorder(), r)
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusGatewayTimeout)
				fmt.Fprint(w, `{"error":{"code":"OUTCOME_UNKNOWN","message":"the database could not say whether the change was committed"}}`)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	env = with(env, "SWITCHYARD_SERVER", front.URL)

	args := []string{"exam-mode", "on", "--reason", "exams", "--phrase", "ENABLE EXAM MODE"}
	r := operate(t, env, "", args...)
	if r.code != exitUnavailable || !strings.Contains(r.err.Error(), "OUTCOME_UNKNOWN") {
		t.Fatalf("exit %d: %v, want 3 and OUTCOME_UNKNOWN", r.code, r.err)
	}
	m := regexp.MustCompile(`run the command again with --idempotency-key (\S+) --if-revision 1,`).FindStringSubmatch(r.err.Error())
	if m == nil {
		t.Fatalf("the error does not say how to send the change again:\n%v", r.err)
	}
	r = operate(t, env, "", append(args, "--idempotency-key", m[1], "--if-revision", "1")...)
	if r.err != nil || r.stdout != "applied: EXAM_MODE on at revision 2 (audit entry 1)\n" {
		t.Fatalf("sent again: %v %q", r.err, r.stdout)
	}
	mu.Lock()
	for i, k := range keys {
		if k != m[1] {
			t.Errorf("attempt %d sent key %q, want %q", i+1, k, m[1])
		}
	}
	mu.Unlock()
	if entries := auditEntries(t, env); len(entries) != 1 || entries[0].Outcome != "applied" {
		t.Fatalf("the audit log holds %+v, want the change applied once", entries)
	}
}

// Every command and subcommand answers --help with its flags and an
// example, and exits 0.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, cmd := range commands() {
		for _, help := range []string{"--help", "-h"} {
			args := append(strings.Fields(cmd.name), help)
			r := operate(t, nil, "", args...)
			if r.err != nil || r.code != exitOK {
				t.Errorf("%v: exit %d, %v", args, r.code, r.err)
				continue
			}
			if !strings.HasPrefix(r.stdout, "usage: switchyard "+cmd.name+" [flags]") || !regexp.MustCompile(`\nexample:\n  .*switchyard `+cmd.name).MatchString(r.stdout) {
				t.Errorf("%v printed no usage and example:\n%s", args, r.stdout)
			}
			fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
			cmd.setup(fs, &cli{getenv: func(string) string { return "" }})
			fs.VisitAll(func(f *flag.Flag) {
				if !strings.Contains(r.stdout, "  -"+f.Name) {
					t.Errorf("%v does not describe --%s:\n%s", args, f.Name, r.stdout)
				}
			})
		}
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"audit", "--help"}, {"override", "-h"}} {
		if r := operate(t, nil, "", args...); r.err != nil || !strings.Contains(r.stdout, "usage: switchyard ") {
			t.Errorf("%v: %v\n%s", args, r.err, r.stdout)
		}
	}
	if r := operate(t, nil, "", "audit"); r.code != exitUsage || !strings.Contains(r.stderr, "audit verify") {
		t.Errorf("audit without a subcommand: exit %d, usage\n%s", r.code, r.stderr)
	}
}

// Help never prints a secret of the environment as a flag's default.
func TestHelpPrintsNoSecret(t *testing.T) {
	env := map[string]string{"SWITCHYARD_TOKEN": "secret-token-value", "SWITCHYARD_DATABASE_URL": "postgres://u:secret-password@db/x"}
	for _, args := range [][]string{{"status", "--help"}, {"audit", "verify", "--help"}, {"migrate", "up", "--help"}} {
		r := operate(t, env, "", args...)
		if strings.Contains(r.stdout, "secret") {
			t.Errorf("%v prints a secret:\n%s", args, r.stdout)
		}
	}
}

// The token is read from a file, named by a flag or the environment; the
// flag wins over the environment.
func TestTokenFile(t *testing.T) {
	env := operatorServer(t)
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(operatorViewer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	freeze := []string{"freeze", "on", "--reason", "r", "--phrase", "ENABLE FREEZE UPDATES"}
	for name, r := range map[string]result{
		"SWITCHYARD_TOKEN_FILE": operate(t, with(env, "SWITCHYARD_TOKEN", "", "SWITCHYARD_TOKEN_FILE", file), "", freeze...),
		"--token-file":          operate(t, with(env, "SWITCHYARD_TOKEN", "not-a-token"), "", append(freeze, "--token-file", file)...),
	} {
		if r.err == nil || !strings.Contains(r.err.Error(), "FORBIDDEN: the viewer role") {
			t.Errorf("%s: %v, want the viewer token of the file refused", name, r.err)
		}
	}
}

// The bash completion script completes commands, subcommands, flags and
// the values of the first argument.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	r := operate(t, nil, "", "completion", "bash")
	if r.err != nil {
		t.Fatal(r.err)
	}
	script := filepath.Join(t.TempDir(), "switchyard.bash")
	if err := os.WriteFile(script, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line string
		want string
	}{
		{"switchyard au", "audit"},
		{"switchyard audit ", "list tail verify"},
		{"switchyard exam-mode ", "on off"},
		{"switchyard mode set ", "demo production"},
		{"switchyard override set --re", "--reason"},
		{"switchyard audit list --out", "--outcome --output"},
		{"switchyard completion ", "bash zsh"},
	}
	for _, tt := range tests {
		words := strings.Fields(tt.line)
		if strings.HasSuffix(tt.line, " ") {
			words = append(words, "")
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		cmd := exec.Command("bash", "-c", fmt.Sprintf(`source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _switchyard; echo "${COMPREPLY[*]}"`,
			script, strings.Join(quoted, " "), len(words)-1))
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != tt.want {
			t.Errorf("completing %q: %q, %v; want %q", tt.line, out, err, tt.want)
		}
	}
	if r := operate(t, nil, "", "completion", "zsh"); r.err != nil || !strings.HasPrefix(r.stdout, "#compdef switchyard\n") {
		t.Errorf("completion zsh: %v\n%.100s", r.err, r.stdout)
	}
}

// The operator commands against a production replica, Postgres behind
// Redis: changes typed and scripted, refusals, the audit log listed and
// verified through the server and in the database, and a mode switch the
// process does not allow refused before it is sent.
func TestOperatorCommandsInProduction(t *testing.T) {
	penv := productionEnv(t)
	s := startServe(t, penv)
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop the server: %v", err)
		}
	})
	env := map[string]string{"SWITCHYARD_SERVER": s.url, "SWITCHYARD_TOKEN": testAdminSecret}

	r := operate(t, env, "ENABLE EXAM MODE\n", "exam-mode", "on", "--reason", "final exams")
	if r.err != nil || r.stdout != "applied: EXAM_MODE on at revision 2 (audit entry 1)\n" {
		t.Fatalf("exam-mode on: %v %q\n%s", r.err, r.stdout, r.stderr)
	}
	r = operate(t, env, "", "override", "set", "mastery", "v0", "--reason", "v1 regression", "--phrase", "OVERRIDE MODULE mastery TO v0", "--output", "json")
	var applied client.Applied
	if err := json.Unmarshal([]byte(r.stdout), &applied); r.err != nil || err != nil || applied.Status.Modules["mastery"].Version != "v0" {
		t.Fatalf("override set: %v %v %+v", r.err, err, applied)
	}
	if r = operate(t, with(env, "SWITCHYARD_TOKEN", testViewerSecret), "", "freeze", "on", "--reason", "r", "--phrase", "ENABLE FREEZE UPDATES"); r.code != exitRefused ||
		!strings.Contains(r.err.Error(), "FORBIDDEN") {
		t.Fatalf("a viewer's change: exit %d, %v", r.code, r.err)
	}
	if r = operate(t, env, "DISABLE EXAM MODE\n", "exam-mode", "on", "--reason", "r"); r.code != exitRefused || !strings.Contains(r.err.Error(), "PHRASE_MISMATCH") {
		t.Fatalf("a wrong phrase: exit %d, %v", r.code, r.err)
	}

	r = operate(t, with(env, "SWITCHYARD_TOKEN", testViewerSecret), "", "status", "--output", "json")
	var status statusView
	if err := json.Unmarshal([]byte(r.stdout), &status); r.err != nil || err != nil {
		t.Fatalf("status: %v %v\n%s", r.err, err, r.stdout)
	}
	if status.Runtime.Revision != 3 || status.Runtime.Mode != "production" || !status.Runtime.Flags.ExamMode || !status.Readiness.Ready ||
		status.SystemMode.Mode != "production" || len(status.SystemMode.Missing) != 0 {
		t.Fatalf("status = runtime %+v, mode %+v, readiness %+v", status.Runtime, status.SystemMode, status.Readiness)
	}

	entries := auditEntries(t, env)
	var outcomes []string
	for _, e := range entries {
		outcomes = append(outcomes, e.Outcome)
	}
	if want := "rejected rejected applied applied"; strings.Join(outcomes, " ") != want {
		t.Fatalf("audit outcomes newest first: %v, want %s", outcomes, want)
	}
	if r = operate(t, env, "", "audit", "verify"); r.err != nil || !strings.Contains(r.stdout, "audit chain intact: 4 entries") {
		t.Fatalf("audit verify on the server: %v\n%s", r.err, r.stdout)
	}
	if r = operate(t, env, "", "audit", "verify", "--database-url", penv["SWITCHYARD_DATABASE_URL"]); r.err != nil ||
		!strings.Contains(r.stdout, "audit chain intact: 4 entries") || !strings.Contains(r.stdout, "verified in the database") {
		t.Fatalf("audit verify in the database: %v\n%s", r.err, r.stdout)
	}

	if r = operate(t, env, "", "mode", "set", "demo", "--reason", "r", "--phrase", "SWITCH TO DEMO MODE"); r.code != exitRefused ||
		!strings.Contains(r.err.Error(), "refused before sending, nothing was sent: LIVE_SWITCH_DISABLED") {
		t.Fatalf("mode set demo in a production process: exit %d, %v", r.code, r.err)
	}
	if got := len(auditEntries(t, env)); got != 4 {
		t.Fatalf("the audit log holds %d entries after a switch refused before sending, want 4", got)
	}
}
