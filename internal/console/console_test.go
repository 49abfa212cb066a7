package console

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// These tests drive the console as a browser without JavaScript does:
// plain requests, forms and redirects.

func TestPagesNeedSignIn(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	for _, path := range []string{"/console/system", "/console/runtime", "/console/flags", "/console/flag?key=EXAM_MODE",
		"/console/sessions?id=s-1", "/console/audit", "/console/export", "/console/confirm?change=flag&flag=EXAM_MODE&value=true"} {
		p := b.get(path)
		if p.status != http.StatusSeeOther || p.location != "/console/sign-in?next="+url.QueryEscape(path) {
			t.Errorf("GET %s signed out = %d to %q, want 303 to sign in and back", path, p.status, p.location)
		}
	}
	if p := b.post("/console/change", url.Values{"change": {"flag"}}); p.status != http.StatusUnauthorized {
		t.Errorf("a change posted signed out = %d, want 401", p.status)
	}
	p := b.get("/console/assets/console.css")
	if p.status != http.StatusOK || !strings.HasPrefix(p.header.Get("Content-Type"), "text/css") {
		t.Errorf("the style sheet = %d %q, want 200 text/css for anyone", p.status, p.header.Get("Content-Type"))
	}
	if csp := b.get("/console/sign-in").header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self';") {
		t.Errorf("Content-Security-Policy %q, want default-src 'self' and nothing inline", csp)
	}
}

// Every page answers 200 to a signed-in operator, never cached.
func TestEveryPage(t *testing.T) {
	s := newSite(t)
	for _, secret := range []string{adminSecret, viewerSecret} {
		b := s.browser()
		b.signIn(secret)
		for _, path := range []string{"/console/system", "/console/runtime", "/console/flags", "/console/flags?q=new",
			"/console/flag?key=EXAM_MODE", "/console/flag?key=no-such-flag", "/console/sessions", "/console/sessions?id=nobody",
			"/console/audit", "/console/audit?verify=1&outcome=rejected", "/console/confirm?change=profile&profile=fallback"} {
			p := b.get(path)
			if p.status != http.StatusOK || p.header.Get("Cache-Control") != "no-store" {
				t.Errorf("GET %s = %d, Cache-Control %q; want 200, no-store:\n%s", path, p.status, p.header.Get("Cache-Control"), p.body)
			}
		}
	}
}

func TestSignInRefusals(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	form := formField(t, b.get("/console/sign-in").body, "csrf")
	tests := []struct {
		name          string
		token, forged string
		status        int
		says          string
	}{
		{"unknown token", "not-a-token", "", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"empty token", "", "", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"form not made by the console", adminSecret, "forged", http.StatusForbidden, "expired or was not made by this console"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csrf := form
			if tt.forged != "" {
				csrf = tt.forged
			}
			p := b.post("/console/sign-in", url.Values{"csrf": {csrf}, "token": {tt.token}})
			if p.status != tt.status || !strings.Contains(p.body, tt.says) {
				t.Fatalf("sign-in = %d, want %d saying %q:\n%s", p.status, tt.status, tt.says, p.body)
			}
			form = formField(t, p.body, "csrf")
		})
	}
	// A client that keeps guessing is held back like one guessing tokens
	// on the API: its allowance of refusals is spent.
	var last page
	for range control.RefusalBurst {
		last = b.post("/console/sign-in", url.Values{"csrf": {form}, "token": {"guess"}})
		form = formField(t, last.body, "csrf")
	}
	if last.status != http.StatusTooManyRequests || !strings.Contains(last.body, "RATE_LIMITED") {
		t.Fatalf("after %d wrong tokens the sign-in answers %d:\n%s", control.RefusalBurst+2, last.status, last.body)
	}
}

// A session ends when it is left idle, when its token is removed, and
// when its token no longer grants a role that may use the console.
func TestSessionEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(s *site)
	}{
		{"idle past the timeout", func(s *site) { s.clock.advance(DefaultIdleTimeout) }},
		{"token removed", func(s *site) {
			s.auth.Replace([]server.Token{{Operator: switchyard.Operator{Name: "victor", Role: switchyard.RoleViewer}, Secret: viewerSecret}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSite(t)
			b := s.browser()
			b.signIn(adminSecret)
			s.clock.advance(DefaultIdleTimeout - time.Minute)
			if p := b.get("/console/system"); p.status != http.StatusOK {
				t.Fatalf("a session used within its idle timeout = %d", p.status)
			}
			tt.end(s)
			if p := b.get("/console/system"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/console/sign-in") {
				t.Fatalf("after the session ended the System page = %d to %q, want 303 to sign in", p.status, p.location)
			}
		})
	}
	t.Run("role changed to viewer", func(t *testing.T) {
		s := newSite(t)
		b := s.browser()
		b.signIn(adminSecret)
		s.auth.Replace([]server.Token{{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleViewer}, Secret: adminSecret}})
		if p := b.get("/console/system"); !strings.Contains(p.body, readOnlyReason) {
			t.Fatalf("the System page of a token now viewer does not say it is read only:\n%s", p.body)
		}
	})
}

// A form is refused unless it carries the session's CSRF token and comes
// from the console's own pages; nothing reaches the core.
func TestFormRefusedWithoutCSRFToken(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	csrf := b.signIn(adminSecret)
	change := url.Values{"change": {"flag"}, "flag": {"EXAM_MODE"}, "value": {"true"}, "base": {"1"},
		"phrase": {"ENABLE EXAM MODE"}, "reason": {"exams"}}
	tests := []struct {
		name   string
		csrf   string
		header map[string]string
		status int
	}{
		{"no token", "", nil, http.StatusForbidden},
		{"another token", "0123456789ABCDEFGHIJKLMNOP", nil, http.StatusForbidden},
		{"sent from another site", csrf, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"sent from another origin", csrf, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"csrf": {tt.csrf}}
			for k, v := range change {
				form[k] = v
			}
			req, err := http.NewRequest("POST", s.url+"/console/change", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			res, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.status)
			}
			if n := len(s.audit()); n != 0 || s.status().Flags.ExamMode {
				t.Fatalf("%d audit entries, exam mode %v: the form reached the core", n, s.status().Flags.ExamMode)
			}
		})
	}
	form := url.Values{"csrf": {csrf}}
	for k, v := range change {
		form[k] = v
	}
	if p := b.post("/console/change", form); p.status != http.StatusSeeOther || !s.status().Flags.ExamMode {
		t.Fatalf("the same form with the session's token = %d, exam mode %v; want applied", p.status, s.status().Flags.ExamMode)
	}
}

// The core decides every change, not the console: a viewer who posts a
// change form anyway is refused by the core's admission, as over the API,
// and the refusal is audited.
func TestViewerChangeRefusedByTheCore(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	csrf := b.signIn(viewerSecret)
	p := b.post("/console/change", url.Values{"csrf": {csrf}, "change": {"flag"}, "flag": {"FREEZE_UPDATES"}, "value": {"true"},
		"base": {"1"}, "phrase": {"ENABLE FREEZE UPDATES"}, "reason": {"trying"}})
	if p.status != http.StatusOK || !strings.Contains(p.body, "FORBIDDEN") || !strings.Contains(p.body, "the viewer role cannot change the runtime; use an admin token") {
		t.Fatalf("a viewer's change = %d, want the confirmation again with the API's FORBIDDEN:\n%s", p.status, p.body)
	}
	if e := s.audit()[0]; e["actor"] != "victor" || e["outcome"] != "rejected" || e["request_id"] != p.header.Get("X-Request-Id") {
		t.Fatalf("newest audit entry %v, want victor's attempt rejected, with the request ID %s", e, p.header.Get("X-Request-Id"))
	}
}

// Sending a confirmation twice (a double click, a retry after a timeout)
// applies it once: its idempotency key is the form's.
func TestConfirmationSentTwiceAppliesOnce(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.signIn(adminSecret)
	conf := b.get("/console/confirm?change=override&module=mastery&version=v0&base=1&return=/console/runtime")
	form := url.Values{}
	for _, name := range []string{"csrf", "change", "module", "version", "enabled", "base", "key", "return"} {
		form.Set(name, formField(t, conf.body, name))
	}
	form.Set("phrase", "OVERRIDE MODULE mastery TO v0")
	form.Set("reason", "v1 regression")
	for i := range 2 {
		if p := b.post("/console/change", form); p.status != http.StatusSeeOther || p.location != "/console/runtime" {
			t.Fatalf("sending %d = %d to %q:\n%s", i+1, p.status, p.location, p.body)
		}
	}
	if st := s.status(); st.Revision != 2 || *st.Overrides["mastery"].Version != "v0" {
		t.Fatalf("revision %d, overrides %v: want the override applied once, as revision 2", st.Revision, st.Overrides)
	}
	if p := b.get("/console/runtime"); !strings.Contains(p.body, "Override module mastery to v0: applied as revision 2") {
		t.Fatalf("the Runtime page does not say the change was applied:\n%s", p.body)
	}
}

// The confirmation shows what a change alters, and a change the store
// would refuse is shown refused before it is tried.
func TestConfirmationShowsBeforeAndAfter(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	b.signIn(adminSecret)
	tests := []struct {
		name  string
		query string
		says  []string
	}{
		{"profile", "change=profile&profile=fallback", []string{"SET PROFILE FALLBACK", "<code>runtime.profile</code></th><td><code>&#34;primary&#34;</code></td><td><code>&#34;fallback&#34;</code>",
			"<code>module.neo4j.enabled</code></th><td><code>true</code></td><td><code>false</code>"}},
		{"disable a module", "change=override&module=neo4j&enabled=false", []string{"DISABLE MODULE neo4j",
			"<code>module.neo4j</code></th><td><code>&#34;v1&#34;</code></td><td><code>disabled (the caller&#39;s default)</code>"}},
		{"a version the catalog lacks", "change=override&module=mastery&version=v9", []string{"UNKNOWN_VERSION", `module &#34;mastery&#34; has no version &#34;v9&#34;`, "allowed_versions"}},
		{"no override to clear", "change=clear-override&module=mastery", []string{"NOT_FOUND", "has no override"}},
		{"a new version", "change=register-module&module=mastery&versions=v2", []string{"REGISTER MODULE mastery",
			"<code>module.mastery</code></th><td><code>&#34;v1&#34;</code></td><td><code>&#34;v1&#34;</code> (its variants change)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := b.get("/console/confirm?" + tt.query)
			for _, want := range tt.says {
				if !strings.Contains(p.body, want) {
					t.Errorf("the confirmation does not show %s:\n%s", want, p.body)
				}
			}
		})
	}
}

// An import shows the importer's report and what it changes first, and
// stores nothing until it is confirmed.
func TestImportDryRunFirst(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	csrf := b.signIn(adminSecret)
	file := `{"flags": {"new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
		"targeting": {"if": [{"ends_with": [{"var": "email"}, "@example.com"]}, "on", "off"]}}}}`
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range map[string]string{"csrf": csrf, "format": "flagd"} {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", "flags.json")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte(file))
	mw.Close()
	req, err := http.NewRequest("POST", s.url+"/console/import", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var dry bytes.Buffer
	dry.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(dry.String(), "<code>new-checkout</code></th><td><code>not defined</code></td><td><code>false, with targeting</code>") ||
		!strings.Contains(dry.String(), "IMPORT FLAGS") {
		t.Fatalf("the dry run = %d, want the flag's before and after and the phrase:\n%s", res.StatusCode, dry.String())
	}
	if n := len(s.audit()); n != 0 {
		t.Fatalf("%d audit entries after the dry run, want none", n)
	}
	form := url.Values{}
	for _, name := range []string{"csrf", "change", "format", "environment", "content", "base", "key", "return"} {
		form.Set(name, formField(t, dry.String(), name))
	}
	form.Set("phrase", "IMPORT FLAGS")
	form.Set("reason", "moving to Switchyard")
	if p := b.post("/console/change", form); p.status != http.StatusSeeOther {
		t.Fatalf("the import = %d:\n%s", p.status, p.body)
	}
	flags := b.get("/console/flags")
	if !strings.Contains(flags.body, `href="/console/flag?key=new-checkout"`) {
		t.Fatalf("the Flags page does not list the imported flag:\n%s", flags.body)
	}

	// Its page: the definition, the import that stored it, and the
	// playground's answer for a context.
	p := b.post("/console/flag", url.Values{"csrf": {csrf}, "key": {"new-checkout"}, "context": {`{"targetingKey": "u-1", "email": "ada@example.com"}`}})
	for _, want := range []string{"&#34;ends_with&#34;", "import_flags", "moving to Switchyard", "<dt>Value</dt><dd><code>true</code>",
		"<dt>Variant</dt><dd><code>on</code>", "<strong>TARGETING_MATCH</strong>"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("the flag's page does not show %s:\n%s", want, p.body)
		}
	}
}

func TestAuditFilter(t *testing.T) {
	s := newSite(t)
	for _, body := range []string{
		`{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exams"}`,
		`{"enabled": false, "phrase": "WRONG", "reason": "oops"}`,
	} {
		s.api("POST", "/v1/admin/system/exam-mode", body)
	}
	b := s.browser()
	b.signIn(viewerSecret)
	tests := []struct {
		query      string
		seqs, none []string
	}{
		{"", []string{`id="entry-2"`, `id="entry-1"`}, nil},
		{"outcome=rejected", []string{`id="entry-2"`}, []string{`id="entry-1"`}},
		{"actor=ALICE&action=set_flag&outcome=applied", []string{`id="entry-1"`}, []string{`id="entry-2"`}},
		{"actor=victor", nil, []string{`id="entry-1"`, `id="entry-2"`}},
		{"from=2999-01-01T00:00", nil, []string{`id="entry-1"`}},
	}
	for _, tt := range tests {
		p := b.get("/console/audit?" + tt.query)
		for _, want := range tt.seqs {
			if !strings.Contains(p.body, want) {
				t.Errorf("?%s does not list %s", tt.query, want)
			}
		}
		for _, unwanted := range tt.none {
			if strings.Contains(p.body, unwanted) {
				t.Errorf("?%s lists %s", tt.query, unwanted)
			}
		}
	}
	if p := b.get("/console/audit?from=yesterday"); !strings.Contains(p.body, "from: must be a time like 2026-03-01T09:00 (UTC)") {
		t.Errorf("an unreadable time is not refused:\n%s", p.body)
	}
}

func TestLocalPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/console/runtime", "/console/runtime"},
		{"/console/audit?actor=alice", "/console/audit?actor=alice"},
		{"", "/console/system"},
		{"https://evil.example/console/", "/console/system"},
		{"//evil.example/console/", "/console/system"},
		{"/console\\..\\x", "/console/system"},
		{"/v1/admin/runtime/status", "/console/system"},
	}
	for _, tt := range tests {
		if got := localPath(tt.in); got != tt.want {
			t.Errorf("localPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPreview(t *testing.T) {
	rev := memory.NewDemo()
	cur, err := rev.Current(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	frozen := cur.Clone()
	frozen.System.AdminFreeze = true
	v0 := "v0"
	tests := []struct {
		name    string
		rev     *switchyard.Revision
		m       switchyard.Mutation
		want    []valueChange
		refused switchyard.Code
	}{
		{"exam mode on", cur, switchyard.SetSystemFlag(switchyard.ExamMode, true), []valueChange{{"EXAM_MODE", "false", "true"}}, ""},
		{"override", cur, switchyard.SetOverride("mastery", &v0, nil), []valueChange{{"module.mastery", `"v1"`, `"v0"`}}, ""},
		{"admin freeze refuses", frozen, switchyard.SetSystemFlag(switchyard.ExamMode, true), nil, switchyard.CodeAdminFreezeActive},
		{"lifting the freeze", frozen, switchyard.SetSystemFlag(switchyard.AdminFreeze, false), []valueChange{{"ADMIN_FREEZE", "true", "false"}}, ""},
		{"unknown profile", cur, switchyard.SetActiveProfile("nope"), nil, switchyard.CodeUnknownProfile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := preview(t.Context(), tt.rev, tt.m, switchyard.ModeDemo, time.Now())
			if switchyard.AsError(err).Code != tt.refused && (err != nil || tt.refused != "") {
				t.Fatalf("error %v, want %s", err, tt.refused)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("changes %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("change %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}
