package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The browser tests run the console in headless Chromium as an operator
// uses it: clicks, typed phrases, dialogs, the live stream.

// evaluate evaluates flag key over OFREP for sessionID (none when empty)
// and returns its value and whether it was served pinned.
func (s *site) evaluate(key, sessionID string) (value any, pinned bool) {
	s.t.Helper()
	ctx := map[string]any{"targetingKey": "learner-9"}
	if sessionID != "" {
		ctx["sessionId"] = sessionID
	}
	body, _ := json.Marshal(map[string]any{"context": ctx})
	status, res := s.api("POST", "/ofrep/v1/evaluate/flags/"+key, string(body))
	if status != http.StatusOK {
		s.t.Fatalf("OFREP %s = %d %v", key, status, res)
	}
	md, _ := res["metadata"].(map[string]any)
	p, _ := md["pinned"].(bool)
	return res["value"], p
}

// TestRunbookInClicks is the operator runbook end to end, in the console:
// exam mode on, freeze on, profile fallback; a session pinned before keeps
// its values through OFREP; restore in reverse; the audit chain verifies.
func TestRunbookInClicks(t *testing.T) {
	s := newSite(t)
	if status, res := s.api("POST", "/v1/sessions", `{"session_id":"s-exam-1","user_id":"learner-9"}`); status != http.StatusCreated {
		t.Fatalf("create session = %d %v", status, res)
	}
	b := newTab(t, s)
	b.signIn(adminSecret)
	if who := b.text(".who"); !strings.Contains(who, "alice") || !strings.Contains(who, "admin") {
		t.Fatalf("header names %q, want alice, admin", who)
	}

	// Exams start.
	b.do(chromedp.Click(chromedp.CSS("#switch-EXAM_MODE button")))
	b.do(chromedp.WaitVisible(chromedp.CSS("dialog[open] #changes")))
	if changes := b.text("dialog[open] #changes tbody"); !strings.Contains(changes, "EXAM_MODE") ||
		!strings.Contains(changes, "false") || !strings.Contains(changes, "true") {
		t.Fatalf("the confirmation shows %q, want EXAM_MODE false → true", changes)
	}
	if phrase := b.text("dialog[open] .phrase"); phrase != "ENABLE EXAM MODE" {
		t.Fatalf("the confirmation asks for %q, want ENABLE EXAM MODE", phrase)
	}
	b.fill("", "final exams 09:00-12:00")
	b.screenshot("confirm")
	b.apply()
	b.waitText(".flash", "applied as revision 2", 5*time.Second)
	b.waitText("#switch-EXAM_MODE .state", "ON", time.Second)

	// Something is wrong: freeze.
	b.do(chromedp.Click(chromedp.CSS("#switch-FREEZE_UPDATES button")))
	b.confirm("", "mastery v1 writing bad scores")
	b.waitText(".flash", "applied as revision 3", 5*time.Second)
	b.waitText("#switch-FREEZE_UPDATES .state", "ON", time.Second)
	b.screenshot("system")

	// Every module to the proven versions.
	b.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/runtime"]`)), chromedp.WaitVisible(chromedp.CSS("#modules")))
	b.do(chromedp.SetValue(chromedp.CSS("#profile-select"), "fallback"), chromedp.Click(chromedp.CSS("#profile button")))
	b.confirm("", "roll back to v0 while we investigate")
	b.waitText(".flash", "applied as revision 4", 5*time.Second)
	b.waitText("#active-profile", "fallback", time.Second)
	b.waitText("#module-mastery .served", "v0", time.Second)
	b.screenshot("runtime")

	// The session pinned before keeps its values; new evaluations get v0.
	if v, pinned := s.evaluate("module.mastery", "s-exam-1"); v != "v1" || !pinned {
		t.Fatalf("pinned session: module.mastery = %v (pinned %v), want v1, pinned", v, pinned)
	}
	if v, _ := s.evaluate("module.mastery", ""); v != "v0" {
		t.Fatalf("live: module.mastery = %v, want v0", v)
	}
	b.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/sessions"]`)), chromedp.WaitVisible(chromedp.CSS("#session-id")))
	b.do(chromedp.SendKeys(chromedp.CSS("#session-id"), "s-exam-1"), chromedp.Submit(chromedp.CSS("#session-id")))
	b.do(chromedp.WaitVisible(chromedp.CSS("#pin")))
	if row := b.text("#pin tbody"); !strings.Contains(row, "module.mastery") {
		t.Fatalf("the session's values do not list module.mastery: %q", row)
	}
	if differs := b.eval(`[...document.querySelectorAll("#pin tr.differs")].map(r => r.innerText.replace(/\s+/g, " ")).join("\n")`); !strings.Contains(differs, "module.mastery differs \"v1\" \"v0\"") ||
		!strings.Contains(differs, "EXAM_MODE differs false true") {
		t.Fatalf("the highlighted differences are:\n%s\nwant module.mastery v1 beside v0, EXAM_MODE false beside true", differs)
	}
	b.screenshot("session")

	// Restore, in reverse order.
	b.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/runtime"]`)), chromedp.WaitVisible(chromedp.CSS("#modules")))
	b.do(chromedp.SetValue(chromedp.CSS("#profile-select"), "primary"), chromedp.Click(chromedp.CSS("#profile button")))
	b.confirm("", "fix deployed")
	b.waitText(".flash", "applied as revision 5", 5*time.Second)
	b.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/system"]`)), chromedp.WaitVisible(chromedp.CSS("#switches")))
	b.do(chromedp.Click(chromedp.CSS("#switch-FREEZE_UPDATES button")))
	b.confirm("", "fix deployed")
	b.waitText(".flash", "applied as revision 6", 5*time.Second)
	b.do(chromedp.Click(chromedp.CSS("#switch-EXAM_MODE button")))
	b.confirm("", "exams over")
	b.waitText(".flash", "applied as revision 7", 5*time.Second)

	st := s.status()
	if st.Flags.ExamMode || st.Flags.FreezeUpdates || st.Profile != "primary" {
		t.Fatalf("after the restore: exam mode %v, freeze %v, profile %q; want off, off, primary", st.Flags.ExamMode, st.Flags.FreezeUpdates, st.Profile)
	}

	// Every attempt is in the audit log, and the chain verifies.
	b.do(chromedp.Click(chromedp.CSS(`nav a[href="/console/audit"]`)), chromedp.WaitVisible(chromedp.CSS("#entries")))
	b.do(chromedp.Click(chromedp.CSS(`form[action="/console/audit"] button`)), chromedp.WaitVisible(chromedp.CSS("#verification")))
	if v := b.text("#verification"); !strings.Contains(v, "The chain is intact: 6 entries") {
		t.Fatalf("verification says %q, want intact, 6 entries", v)
	}
	if n := b.eval(`String(document.querySelectorAll("#entries details.entry").length)`); n != "6" {
		t.Fatalf("the audit page lists %s entries, want 6", n)
	}
	b.do(chromedp.Click(chromedp.CSS("#entry-1 summary")))
	if reason := b.text("#entry-1 dl"); !strings.Contains(reason, "final exams 09:00-12:00") || !strings.Contains(reason, "ENABLE EXAM MODE") {
		t.Fatalf("entry 1 expanded shows %q, want its reason and phrase", reason)
	}
	b.screenshot("audit")
	for _, e := range s.audit() {
		if e["actor"] != "alice" || e["outcome"] != "applied" {
			t.Errorf("audit entry %v: want applied by alice", e)
		}
	}
}

// TestViewerSeesEverythingChangesNothing: a viewer reads every page, and
// every control is shown disabled with the reason.
func TestViewerSeesEverythingChangesNothing(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(viewerSecret)
	if why := b.text("#read-only"); !strings.Contains(why, "viewer role cannot change the runtime") {
		t.Fatalf("the read-only notice says %q", why)
	}
	for _, path := range []string{"/console/system", "/console/runtime", "/console/flags"} {
		b.open(path)
		b.do(chromedp.WaitVisible(chromedp.CSS("main h1")))
		// Every button that makes a change is disabled and says why.
		buttons := `[...document.querySelectorAll("form[data-confirm] button, form[action='/console/import'] button")]`
		enabled := b.eval(buttons + `.filter(x => !x.disabled || x.getAttribute("aria-describedby") !== "read-only").length + " of " + ` + buttons + `.length`)
		if !strings.HasPrefix(enabled, "0 of ") || enabled == "0 of 0" {
			t.Errorf("%s: %s change buttons are enabled or unexplained, want none of several", path, enabled)
		}
	}
	b.open("/console/audit")
	b.do(chromedp.WaitVisible(chromedp.CSS("#entries")))
	b.open("/console/sessions")
	b.do(chromedp.WaitVisible(chromedp.CSS("#session-id")))
	b.open("/console/system")
	b.do(chromedp.WaitVisible(chromedp.CSS("#switches")))
	b.screenshot("viewer")
}

// TestWrongPhrase: a phrase typed wrong is refused as the API words it,
// the dialog stays open, and nothing changes.
func TestWrongPhrase(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(adminSecret)
	b.do(chromedp.Click(chromedp.CSS("#switch-EXAM_MODE button")))
	b.confirm("ENABLE EXAM", "final exams")
	b.waitText("dialog[open] .error", "PHRASE_MISMATCH", 5*time.Second)
	if e := b.text("dialog[open] .error"); !strings.Contains(e, `phrase must be exactly "ENABLE EXAM MODE"`) || !strings.Contains(e, "expected_phrase") {
		t.Fatalf("the dialog says %q, want the API's PHRASE_MISMATCH with expected_phrase", e)
	}
	if reason := b.eval(`document.querySelector("dialog[open] #reason").value`); reason != "final exams" {
		t.Fatalf("the reason typed is %q after the refusal, want it kept", reason)
	}
	if s.status().Flags.ExamMode {
		t.Fatal("EXAM_MODE is on after a wrong phrase")
	}
	if e := s.audit()[0]; e["outcome"] != "rejected" || e["action"] != "set_flag" {
		t.Fatalf("newest audit entry %v, want the rejected attempt", e)
	}
}

// TestStaleRevision: a change made meanwhile (over the API) is reported,
// not overwritten: the console sends the revision it was based on.
func TestStaleRevision(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(adminSecret)
	b.do(chromedp.Click(chromedp.CSS("#switch-EXAM_MODE button")), chromedp.WaitVisible(chromedp.CSS("dialog[open] #phrase")))
	if status, res := s.api("POST", "/v1/admin/runtime/profile", `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"meanwhile"}`); status != http.StatusOK {
		t.Fatalf("change over the API = %d %v", status, res)
	}
	b.waitText("dialog[open] .stale", "Revision 2 is out", 2*time.Second)
	b.confirm("", "final exams")
	b.waitText("dialog[open] .error", "REVISION_CONFLICT", 5*time.Second)
	if e := b.text("dialog[open] .error"); !strings.Contains(e, "the change was based on revision 1 but the current revision is 2") {
		t.Fatalf("the dialog says %q", e)
	}
	if st := s.status(); st.Flags.ExamMode || st.Profile != "fallback" {
		t.Fatalf("exam mode %v, profile %q: want the change made meanwhile kept and the stale one refused", st.Flags.ExamMode, st.Profile)
	}
}

// TestSignOut ends the session on the server: the cookie it had no
// longer opens a page.
func TestSignOut(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(adminSecret)
	cookies, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v, want HttpOnly and SameSite=Strict", session)
	}
	b.do(chromedp.Click(chromedp.CSS(".who button")), chromedp.WaitVisible(chromedp.CSS("#token")))
	if msg := b.text(".flash"); msg != "You are signed out." {
		t.Fatalf("after sign-out the page says %q", msg)
	}
	b.open("/console/system")
	b.do(chromedp.WaitVisible(chromedp.CSS("#token")))

	old := s.browser()
	consoleURL, err := url.Parse(s.url + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	old.client.Jar.SetCookies(consoleURL, []*http.Cookie{{Name: sessionCookie, Value: session.Value}})
	if p := old.get("/console/system"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/console/sign-in") {
		t.Fatalf("the signed-out session's cookie opens the System page: %d %q", p.status, p.location)
	}
}

// TestCSRFRefused: a form whose CSRF token is not the session's is
// refused, and nothing changes.
func TestCSRFRefused(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(adminSecret)
	b.do(chromedp.Click(chromedp.CSS("#switch-EXAM_MODE button")), chromedp.WaitVisible(chromedp.CSS("dialog[open] #phrase")))
	b.do(chromedp.SetAttributeValue(chromedp.CSS(`dialog[open] input[name="csrf"]`), "value", "forged"))
	b.confirm("", "final exams")
	b.waitText("dialog[open]", "does not carry your session's CSRF token", 5*time.Second)
	if s.status().Flags.ExamMode {
		t.Fatal("EXAM_MODE is on after a forged form")
	}
	if n := len(s.audit()); n != 0 {
		t.Fatalf("%d audit entries after a forged form, want none: it never reached the core", n)
	}
}

// TestLiveUpdate: a change made over the API shows on an open System page
// within a second, without a reload.
func TestLiveUpdate(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(adminSecret)
	b.waitText("#live-state", "live", 5*time.Second)
	start := time.Now()
	if status, res := s.api("POST", "/v1/admin/system/exam-mode", `{"enabled":true,"phrase":"ENABLE EXAM MODE","reason":"from the API"}`); status != http.StatusOK {
		t.Fatalf("change over the API = %d %v", status, res)
	}
	b.waitText("#switch-EXAM_MODE .state", "ON", time.Second)
	b.waitText("#switch-EXAM_MODE .last", "from the API", time.Second)
	b.waitText("#revision", "revision 2", time.Second)
	t.Logf("the change reached the open page in %v", time.Since(start).Round(time.Millisecond))
	if loads := b.eval(`String(performance.getEntriesByType("navigation").length)`); loads != "1" {
		t.Fatalf("%s page loads, want the page updated in place", loads)
	}
}

// TestWithoutJavaScript: every change works as plain forms, the
// confirmation a page of its own.
func TestWithoutJavaScript(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	if _, err := chromedp.Call(b.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	b.signIn(adminSecret)
	b.do(chromedp.Click(chromedp.CSS("#switch-FREEZE_UPDATES button")), chromedp.WaitVisible(chromedp.CSS("#confirm-form")))
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); !strings.Contains(loc, "/console/confirm?") {
		t.Fatalf("the confirmation is at %s, want its own page", loc)
	}
	b.do(
		chromedp.SendKeys(chromedp.CSS("#phrase"), "ENABLE FREEZE UPDATES"),
		chromedp.SendKeys(chromedp.CSS("#reason"), "no script"),
		chromedp.Click(chromedp.CSS("#confirm-form button.primary")),
	)
	b.waitText(".flash", "applied as revision 2", 5*time.Second)
	if !s.status().Flags.FreezeUpdates {
		t.Fatal("FREEZE_UPDATES is off after the form was applied")
	}
}

// TestOnAPhone: the System page fits a phone's width, without sideways
// scrolling of the page.
func TestOnAPhone(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(adminSecret)
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#switches")))
	if w := b.eval(`String(document.documentElement.scrollWidth)`); w != "390" {
		t.Fatalf("the page is %s px wide on a 390 px phone", w)
	}
	b.screenshot("phone")
}

// TestKeyboardOnly: a change is made with the keyboard alone; the dialog
// takes the focus to the phrase, and Escape closes it and gives the focus
// back to the button that opened it.
func TestKeyboardOnly(t *testing.T) {
	s := newSite(t)
	b := newTab(t, s)
	b.signIn(adminSecret)
	focused := `document.activeElement.id || document.activeElement.textContent.trim()`

	b.do(chromedp.Focus(chromedp.CSS("#switch-FREEZE_UPDATES button")), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("dialog[open] #phrase")))
	b.waitText("dialog[open]", "ENABLE FREEZE UPDATES", time.Second)
	b.do(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(chromedp.CSS("dialog #phrase")))
	if f := b.eval(focused); f != "Turn FREEZE_UPDATES on…" {
		t.Fatalf("after Escape the focus is on %q, want the button that opened the dialog", f)
	}

	b.do(chromedp.Focus(chromedp.CSS("#switch-EXAM_MODE button")), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("dialog[open] #phrase")))
	if f := b.eval(focused); f != "phrase" {
		t.Fatalf("the dialog opened with the focus on %q, want the phrase", f)
	}
	b.do(chromedp.KeyEvent("ENABLE EXAM MODE"), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent("keyboard only"), chromedp.KeyEvent(kb.Tab))
	if f := b.eval(focused); f != "Apply" {
		t.Fatalf("Tab from the reason reaches %q, want Apply", f)
	}
	b.do(chromedp.KeyEvent(kb.Enter))
	b.waitText(".flash", "applied as revision 2", 5*time.Second)
	if !s.status().Flags.ExamMode {
		t.Fatal("EXAM_MODE is off after the keyboard confirmed it")
	}
}
