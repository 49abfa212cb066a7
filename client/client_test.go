package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// The tokens of the test server.
const (
	adminToken  = "client-test-admin"
	viewerToken = "client-test-viewer"
	// approverToken is a second admin's, who approves the first's
	// change requests.
	approverToken = "client-test-approver"
)

// newServer starts the API over a fresh demo store and returns its URL.
func newServer(t testing.TB) string {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	core := control.New(logger, control.Config{Mode: switchyard.ModeDemo}, memory.NewDemo())
	ts := httptest.NewServer(server.New(logger, core, server.Config{Auth: server.NewAuthenticator([]server.Token{
		{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleAdmin}, Secret: adminToken},
		{Operator: switchyard.Operator{Name: "victor", Role: switchyard.RoleViewer}, Secret: viewerToken},
	})}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func newClient(t testing.TB, url, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(token)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// Each change, confirmed by the phrase the domain names, is applied and
// answered with the runtime it made.
func TestChanges(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, newServer(t), adminToken)
	w := func(phrase string) client.Write { return client.Write{Phrase: phrase, Reason: "client test"} }
	steps := []struct {
		name   string
		change func() (*client.Applied, error)
		check  func(st client.Status) bool
	}{
		{"exam mode on", func() (*client.Applied, error) {
			return c.SetSystemFlag(ctx, switchyard.ExamMode, true, w(switchyard.SystemFlagPhrase(switchyard.ExamMode, true)))
		}, func(st client.Status) bool { return st.Flags.ExamMode }},
		{"profile fallback", func() (*client.Applied, error) {
			return c.SetProfile(ctx, "fallback", w(switchyard.ProfilePhrase("fallback")))
		}, func(st client.Status) bool { return st.Profile == "fallback" && st.Modules["mastery"].Version == "v0" }},
		{"override a version", func() (*client.Applied, error) {
			return c.SetOverride(ctx, "mastery", switchyard.Override{Version: ptr("v1")}, w(switchyard.OverrideVersionPhrase("mastery", "v1")))
		}, func(st client.Status) bool {
			return st.Modules["mastery"] == switchyard.ResolvedModule{Version: "v1", Enabled: true, Source: switchyard.SourceOverride}
		}},
		{"disable a module", func() (*client.Applied, error) {
			return c.SetOverride(ctx, "neo4j", switchyard.Override{Enabled: ptr(false)}, w(switchyard.ModuleEnabledPhrase("neo4j", false)))
		}, func(st client.Status) bool {
			return !st.Modules["neo4j"].Enabled && st.Modules["neo4j"].Source == switchyard.SourceOverride
		}},
		{"clear an override", func() (*client.Applied, error) {
			return c.ClearOverride(ctx, "mastery", w(switchyard.ClearOverridePhrase("mastery")))
		}, func(st client.Status) bool { return st.Modules["mastery"].Source == switchyard.SourceProfile }},
	}
	for i, s := range steps {
		a, err := s.change()
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if want := int64(i + 2); a.Status.Revision != want || a.AuditSeq != int64(i+1) || !s.check(a.Status) {
			t.Fatalf("%s: applied %+v, want revision %d, audit entry %d and the change", s.name, a, want, i+1)
		}
	}
	st, err := c.Status(ctx)
	if err != nil || st.Revision != 6 {
		t.Fatalf("status after the changes: %+v, %v", st, err)
	}
}

// A refusal is the API's error: its code to branch on, its message and
// its fields.
func TestRefusals(t *testing.T) {
	ctx := context.Background()
	url := newServer(t)
	admin, viewer := newClient(t, url, adminToken), newClient(t, url, viewerToken)
	on := client.Write{Phrase: "ENABLE EXAM MODE", Reason: "client test"}
	tests := []struct {
		name  string
		err   func() error
		code  switchyard.Code
		field string
		value any
	}{
		{"viewer", func() error { _, err := viewer.SetSystemFlag(ctx, switchyard.ExamMode, true, on); return err },
			switchyard.CodeForbidden, "", nil},
		{"wrong phrase", func() error {
			_, err := admin.SetSystemFlag(ctx, switchyard.ExamMode, true, client.Write{Phrase: "enable exam mode", Reason: "r"})
			return err
		}, switchyard.CodePhraseMismatch, "expected_phrase", "ENABLE EXAM MODE"},
		{"stale revision", func() error {
			w := on
			w.IfRevision = 7
			_, err := admin.SetSystemFlag(ctx, switchyard.ExamMode, true, w)
			return err
		}, switchyard.CodeRevisionConflict, "current_revision", float64(1)},
		{"no token", func() error { _, err := newClient(t, url, "").Status(ctx); return err }, switchyard.CodeUnauthorized, "", nil},
		{"no override", func() error {
			_, err := admin.ClearOverride(ctx, "search", client.Write{Phrase: switchyard.ClearOverridePhrase("search"), Reason: "r"})
			return err
		}, switchyard.CodeNotFound, "", nil},
		{"unknown session", func() error { _, err := admin.Session(ctx, "s-nobody"); return err }, switchyard.CodeNotFound, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *switchyard.Error
			if err := tt.err(); !errors.As(err, &e) || e.Code != tt.code || e.Message == "" {
				t.Fatalf("error = %v, want %s with a message", err, tt.code)
			}
			if tt.field != "" && e.Fields[tt.field] != tt.value {
				t.Fatalf("%s = %v, want %v (fields %v)", tt.field, e.Fields[tt.field], tt.value, e.Fields)
			}
		})
	}
}

func TestReads(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, newServer(t), viewerToken)
	r, err := c.Readiness(ctx)
	if err != nil || !r.Ready || r.Status != "ready" || r.Revision != 1 {
		t.Fatalf("readiness = %+v, %v", r, err)
	}
	p, err := c.SystemMode(ctx)
	if err != nil || p.Mode != switchyard.ModeDemo {
		t.Fatalf("system mode = %+v, %v", p, err)
	}
	ev, err := c.Evaluate(ctx, "module.mastery", map[string]any{"targetingKey": "user-1", "sessionId": "s-1"})
	if err != nil || ev.Value != "v1" || ev.Reason != "STATIC" || ev.Metadata["pinned"] != true {
		t.Fatalf("evaluation = %+v, %v", ev, err)
	}
	snap, err := c.Session(ctx, "s-1")
	if err != nil || snap.Revision != 1 || snap.Modules["mastery"].Version != "v1" {
		t.Fatalf("session = %+v, %v", snap, err)
	}
	ev, err = c.Evaluate(ctx, "no-such-flag", nil)
	if err != nil || ev.ErrorCode != "FLAG_NOT_FOUND" || ev.ErrorDetails == "" {
		t.Fatalf("evaluation of an unknown flag = %+v, %v", ev, err)
	}
	doc, revision, err := c.Export(ctx)
	if err != nil || revision != 1 || !strings.Contains(string(doc), `"module.mastery"`) {
		t.Fatalf("export: revision %d, %v\n%.200s", revision, err, doc)
	}
	v, err := c.VerifyAudit(ctx)
	if err != nil || !v.OK || v.Entries != 0 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

// The audit log pages newest first, and a refusal is in it with why.
func TestAuditPages(t *testing.T) {
	ctx := context.Background()
	url := newServer(t)
	admin := newClient(t, url, adminToken)
	for _, on := range []bool{true, false, true} {
		if _, err := admin.SetSystemFlag(ctx, switchyard.FreezeUpdates, on,
			client.Write{Phrase: switchyard.SystemFlagPhrase(switchyard.FreezeUpdates, on), Reason: "paging"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.SetProfile(ctx, "shadow", client.Write{Phrase: "SET PROFILE shadow", Reason: "paging"}); err == nil {
		t.Fatal("a wrong phrase was applied")
	}
	var seqs []int64
	for q := (client.AuditQuery{Limit: 3}); ; {
		page, err := admin.Audit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			seqs = append(seqs, e.Seq)
		}
		if page.NextBefore == 0 {
			break
		}
		q.Before = page.NextBefore
	}
	if len(seqs) != 4 || seqs[0] != 4 || seqs[3] != 1 {
		t.Fatalf("audit sequence numbers %v, want 4 3 2 1", seqs)
	}
	page, err := admin.Audit(ctx, client.AuditQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if e := page.Entries[0]; e.Outcome != "rejected" || !strings.Contains(e.Why, "PHRASE_MISMATCH") || e.Phrase != "SET PROFILE shadow" {
		t.Fatalf("newest entry %+v, want the rejected phrase", e)
	}
}

// A change whose answer is lost on the way back is sent again with the
// same idempotency key, and applied once.
func TestLostAnswerIsSentAgainWithTheSameKey(t *testing.T) {
	ctx := context.Background()
	target, err := url.Parse(newServer(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var (
		mu   sync.Mutex
		keys []string
	)
	var cut atomic.Bool
	cut.Store(true)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			proxy.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if !cut.CompareAndSwap(true, false) {
			proxy.ServeHTTP(w, r)
			return
		}
		// The change reaches the server, whose answer is lost: the
		// connection closes before a byte of it comes back.
		proxy.ServeHTTP(httptest.NewRecorder(), r)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(front.Close)

	c := newClient(t, front.URL, adminToken)
	a, err := c.SetSystemFlag(ctx, switchyard.ExamMode, true, client.Write{Phrase: "ENABLE EXAM MODE", Reason: "lost answer"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status.Revision != 2 || a.AuditSeq != 1 || !a.Status.Flags.ExamMode {
		t.Fatalf("applied %+v, want the first attempt's outcome: revision 2, audit entry 1", a)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Fatalf("idempotency keys sent: %q, want the same key twice", keys)
	}
	page, err := c.Audit(ctx, client.AuditQuery{})
	if err != nil || len(page.Entries) != 1 {
		t.Fatalf("audit log: %+v, %v; want one entry", page, err)
	}
}

// A server that cannot answer (503) is asked again, as often as the
// client's attempts allow, and its error is the API's; one that does not
// answer at all is ErrUnreachable.
func TestUnavailable(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int32
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "0")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":"UNAVAILABLE","message":"degraded: the store does not answer"}}`)
	}))
	t.Cleanup(busy.Close)
	_, err := newClient(t, busy.URL, viewerToken, client.WithAttempts(2)).Status(ctx)
	if switchyard.ErrorCode(err) != switchyard.CodeUnavailable || calls.Load() != 2 {
		t.Fatalf("error %v after %d calls, want UNAVAILABLE after 2", err, calls.Load())
	}

	// A server that is not ready answers so, once: that is no failure.
	calls.Store(0)
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"degraded","reason":"the store does not answer; serving last known revision 7"}`)
	}))
	t.Cleanup(notReady.Close)
	r, err := newClient(t, notReady.URL, "").Readiness(ctx)
	if err != nil || r.Ready || r.Status != "degraded" || r.Reason == "" || calls.Load() != 1 {
		t.Fatalf("readiness = %+v, %v after %d calls, want not ready after 1", r, err, calls.Load())
	}

	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	start := time.Now()
	_, err = newClient(t, gone.URL, viewerToken).Status(ctx)
	if !errors.Is(err, client.ErrUnreachable) || !strings.Contains(err.Error(), "no answer from "+gone.URL) {
		t.Fatalf("error = %v, want ErrUnreachable naming the server", err)
	}
	t.Logf("three attempts at a closed port took %v", time.Since(start))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := newClient(t, gone.URL, viewerToken).Status(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled call: %v, want context.Canceled", err)
	}
}

func TestNewRefusesABadURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host", "http://"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted it", u)
		}
	}
}

// Change requests: a proposal sent again with its key answers the request
// it made; the list filters by state; reject and cancel end a request,
// and a refusal is the API's error.
func TestChangeRequests(t *testing.T) {
	serverURL, stop := fourEyesServer()
	t.Cleanup(stop)
	ctx := context.Background()
	alice, bob := newClient(t, serverURL, adminToken), newClient(t, serverURL, approverToken)
	exam := client.Proposal{Action: "set_flag", Fields: map[string]any{"flag": switchyard.ExamMode, "value": true}}
	w := client.Write{Phrase: "ENABLE EXAM MODE", Reason: "exams", IdempotencyKey: client.NewIdempotencyKey()}
	first, err := alice.ProposeChange(ctx, exam, w)
	if err != nil || first.ID != 1 || first.State != switchyard.ChangeProposed {
		t.Fatalf("propose = %+v, %v", first, err)
	}
	again, err := alice.ProposeChange(ctx, exam, w)
	if err != nil || again.ID != first.ID {
		t.Fatalf("the same proposal sent again = %+v, %v; want change %d", again, err, first.ID)
	}
	freeze := client.Proposal{Action: "set_flag", Fields: map[string]any{"flag": switchyard.FreezeUpdates, "value": true}}
	second, err := alice.ProposeChange(ctx, freeze, client.Write{Phrase: "ENABLE FREEZE UPDATES", Reason: "drill"})
	if err != nil || second.ID != 2 {
		t.Fatalf("second proposal = %+v, %v", second, err)
	}
	if _, err := alice.ProposeChange(ctx, freeze, client.Write{Phrase: "FREEZE", Reason: "drill"}); switchyard.ErrorCode(err) != switchyard.CodePhraseMismatch {
		t.Fatalf("proposal with a wrong phrase: %v, want PHRASE_MISMATCH", err)
	}
	if cr, err := bob.RejectChange(ctx, first.ID, "not today"); err != nil || cr.State != switchyard.ChangeRejected {
		t.Fatalf("reject = %+v, %v", cr, err)
	}
	if cr, err := alice.CancelChange(ctx, second.ID, "drill over"); err != nil || cr.State != switchyard.ChangeCancelled {
		t.Fatalf("cancel = %+v, %v", cr, err)
	}
	if _, err := alice.CancelChange(ctx, first.ID, "again"); switchyard.ErrorCode(err) != switchyard.CodeChangeState {
		t.Fatalf("cancelling a rejected request: %v, want CHANGE_REQUEST_STATE", err)
	}
	if _, err := bob.ChangeRequest(ctx, 9); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("unknown request: %v, want NOT_FOUND", err)
	}
	page, err := bob.ChangeRequests(ctx, client.ChangeQuery{State: switchyard.ChangeRejected})
	if err != nil || len(page.Changes) != 1 || page.Changes[0].ID != first.ID {
		t.Fatalf("rejected requests = %+v, %v", page, err)
	}
	page, err = bob.ChangeRequests(ctx, client.ChangeQuery{Limit: 1})
	if err != nil || len(page.Changes) != 1 || page.Changes[0].ID != second.ID || page.NextBefore != second.ID {
		t.Fatalf("first page of one = %+v, %v", page, err)
	}
}
