package console

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// The tokens every test site accepts.
const (
	adminSecret  = "alice-admin-secret-for-console-tests"
	viewerSecret = "victor-viewer-secret-for-console-tests"
)

// site is a switchyard server over a fresh demo store, with the console
// mounted as switchyard serve mounts it, on a real listener a browser can
// reach.
type site struct {
	t    testing.TB
	url  string
	auth *server.Authenticator
	logs *storetest.LogBuffer
	// clock is the console's clock, which a test may move; it starts at
	// the time the site is made and follows real time.
	clock *clock
}

// clock is the real time plus an offset a test sets.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func newSite(t testing.TB) *site {
	t.Helper()
	s := &site{t: t, logs: &storetest.LogBuffer{}, clock: &clock{}}
	logger := slog.New(slog.NewTextHandler(s.logs, nil))
	core := control.New(logger, control.Config{Mode: switchyard.ModeDemo}, memory.NewDemo())
	s.auth = server.NewAuthenticator([]server.Token{
		{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleAdmin}, Secret: adminSecret},
		{Operator: switchyard.Operator{Name: "victor", Role: switchyard.RoleViewer}, Secret: viewerSecret},
	})
	con := New(logger, core, Config{Tokens: s.auth, Now: s.clock.now})
	srv := httptest.NewServer(server.New(logger, core, server.Config{Auth: s.auth, Console: con}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// api sends a request to the site's REST API with an admin token and
// returns the status and the decoded JSON body.
func (s *site) api(method, path, body string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		s.t.Fatalf("%s %s: the answer is not JSON: %v", method, path, err)
	}
	return res.StatusCode, out
}

// status returns the runtime status as the API answers it.
func (s *site) status() control.Status {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.url+"/v1/admin/runtime/status", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var st control.Status
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// audit returns the newest audit entries as the API answers them.
func (s *site) audit() []map[string]any {
	s.t.Helper()
	_, page := s.api("GET", "/v1/admin/audit?limit=100", "")
	var out []map[string]any
	for _, e := range page["entries"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// browser is a client without JavaScript: it keeps cookies and does not
// follow redirects, so a test sees each answer.
type browser struct {
	t      testing.TB
	site   *site
	client *http.Client
}

func (s *site) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	return &browser{t: s.t, site: s, client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is a console answer: its status, its Location and its body.
type page struct {
	status   int
	location string
	header   http.Header
	body     string
}

// get asks for path.
func (b *browser) get(path string) page {
	b.t.Helper()
	return b.send("GET", path, nil)
}

// post posts a form to path, as a browser on the console's own pages
// does.
func (b *browser) post(path string, form url.Values) page {
	b.t.Helper()
	return b.send("POST", path, form)
}

func (b *browser) send(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.site.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page{status: res.StatusCode, location: res.Header.Get("Location"), header: res.Header, body: string(data)}
}

// formField returns the value of the first hidden input named name in body.
func formField(t testing.TB, body, name string) string {
	t.Helper()
	marker := `name="` + name + `" value="`
	_, rest, ok := strings.Cut(body, marker)
	if !ok {
		t.Fatalf("the page has no field %q:\n%s", name, body)
	}
	v, _, _ := strings.Cut(rest, `"`)
	return html.UnescapeString(v)
}

// signIn signs the browser in with secret and returns the session's CSRF
// token, read from the System page.
func (b *browser) signIn(secret string) string {
	b.t.Helper()
	form := b.get("/console/sign-in")
	res := b.post("/console/sign-in", url.Values{"csrf": {formField(b.t, form.body, "csrf")}, "token": {secret}, "next": {"/console/system"}})
	if res.status != http.StatusSeeOther || res.location != "/console/system" {
		b.t.Fatalf("sign-in = %d to %q, want 303 to /console/system:\n%s", res.status, res.location, res.body)
	}
	sys := b.get("/console/system")
	if sys.status != http.StatusOK {
		b.t.Fatalf("System page after sign-in = %d:\n%s", sys.status, sys.body)
	}
	return formField(b.t, sys.body, "csrf")
}

// browserRequired says a missing browser fails the tests rather than
// skipping them, as in CI.
func browserRequired() bool { return os.Getenv("SWITCHYARD_REQUIRE_BROWSER") == "1" }

// contextWithTimeout is a context that ends with the test or after d.
func contextWithTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
