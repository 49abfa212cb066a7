package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// The client token the harness accepts when a test adds it.
const (
	clientToken = "client-token-for-tests"
	clientName  = "web-app"
)

// withClientTokens adds a client token and requires a token for
// evaluation.
func withClientTokens(c *testConfig) {
	c.Tokens = append(c.Tokens, Token{Operator: switchyard.Operator{Name: clientName, Role: switchyard.RoleClient}, Secret: clientToken})
	c.RequireClientToken = true
}

const bulkBody = `{"context":{"targetingKey":"u"}}`

// TestCORS: the origins configured for evaluation and for the admin API
// may call their routes from a browser, preflight included; nobody else
// may, credentials are never allowed, and "*" opens evaluation only.
func TestCORS(t *testing.T) {
	const app, ops, evil = "https://app.example", "https://ops.example", "https://evil.example"
	named := newHarness(t, func(c *testConfig) {
		c.CORSOrigins = []string{app}
		c.CORSAdminOrigins = []string{ops}
	})
	anyOrigin := newHarness(t, func(c *testConfig) { c.CORSOrigins = []string{"*"} })
	none := newHarness(t)

	tests := []struct {
		name         string
		h            *harness
		method, path string
		origin       string
		preflight    bool
		token        string
		wantAllow    string // Access-Control-Allow-Origin; "" for none
		wantStatus   int
	}{
		{"bulk evaluation from the app", named, "POST", "/ofrep/v1/evaluate/flags", app, false, "", app, 200},
		{"bulk evaluation from another origin", named, "POST", "/ofrep/v1/evaluate/flags", evil, false, "", "", 200},
		{"the admin origin evaluating", named, "POST", "/ofrep/v1/evaluate/flags", ops, false, "", "", 200},
		{"preflight of a single evaluation", named, "OPTIONS", "/ofrep/v1/evaluate/flags/EXAM_MODE", app, true, "", app, 204},
		{"preflight of the event stream", named, "OPTIONS", "/ofrep/v1/events", app, true, "", app, 204},
		{"preflight of the bundle", named, "OPTIONS", "/v1/bundle", app, true, "", app, 204},
		{"preflight from another origin", named, "OPTIONS", "/ofrep/v1/evaluate/flags", evil, true, "", "", 405},
		{"the app reading the admin API", named, "GET", "/v1/admin/runtime/status", app, false, viewerToken, "", 200},
		{"the app's preflight of the admin API", named, "OPTIONS", "/v1/admin/runtime/flags", app, true, "", "", 405},
		{"the admin origin reading the admin API", named, "GET", "/v1/admin/runtime/status", ops, false, viewerToken, ops, 200},
		{"the admin origin's preflight", named, "OPTIONS", "/v1/admin/runtime/flags", ops, true, "", ops, 204},
		{"any origin evaluating", anyOrigin, "POST", "/ofrep/v1/evaluate/flags", evil, false, "", "*", 200},
		{"any origin's preflight", anyOrigin, "OPTIONS", "/ofrep/v1/evaluate/flags", evil, true, "", "*", 204},
		{"any origin and the admin API", anyOrigin, "OPTIONS", "/v1/admin/runtime/flags", evil, true, "", "", 405},
		{"health probes", anyOrigin, "GET", "/healthz", evil, false, "", "", 200},
		{"nothing configured", none, "POST", "/ofrep/v1/evaluate/flags", app, false, "", "", 200},
		{"nothing configured, preflight", none, "OPTIONS", "/ofrep/v1/evaluate/flags", app, true, "", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{"Origin": tt.origin}
			var res response
			if tt.preflight {
				req := httptest.NewRequest(tt.method, "http://switchyard.test"+tt.path, nil)
				req.Header.Set("Origin", tt.origin)
				req.Header.Set("Access-Control-Request-Method", "POST")
				req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
				rec := httptest.NewRecorder()
				tt.h.handler.ServeHTTP(rec, req)
				res = response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
			} else {
				body := ""
				if tt.method == "POST" {
					body = bulkBody
				}
				res = tt.h.do(t, call{method: tt.method, path: tt.path, body: body, token: tt.token, header: header})
			}
			h := res.header
			if res.status != tt.wantStatus || h.Get("Access-Control-Allow-Origin") != tt.wantAllow {
				t.Fatalf("%d with Access-Control-Allow-Origin %q, want %d with %q", res.status, h.Get("Access-Control-Allow-Origin"), tt.wantStatus, tt.wantAllow)
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatal("credentials allowed")
			}
			switch {
			case tt.wantAllow != "" && tt.preflight:
				if !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
					!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Max-Age") == "" {
					t.Fatalf("preflight answer %v lacks what the request may send", h)
				}
			case tt.wantAllow != "":
				if !strings.Contains(h.Get("Access-Control-Expose-Headers"), "ETag") {
					t.Fatalf("the page cannot read the ETag: %v", h)
				}
			}
			if tt.wantAllow != "" && tt.wantAllow != "*" && !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Fatalf("an answer for one origin does not vary by Origin: %v", h)
			}
		})
	}
}

// TestClientTokens: with client tokens required, what applications read
// needs a valid token, a client token reads it and nothing of the admin
// API, and an operator's token evaluates too.
func TestClientTokens(t *testing.T) {
	h := newHarness(t, withClientTokens)
	reads := []call{
		{method: "POST", path: "/ofrep/v1/evaluate/flags", body: bulkBody},
		{method: "POST", path: "/ofrep/v1/evaluate/flags/EXAM_MODE", body: bulkBody},
		{method: "POST", path: "/v1/sessions", body: `{"session_id":"s-token","user_id":"u"}`},
		{method: "GET", path: "/v1/sessions/s-token"},
		{method: "GET", path: "/v1/bundle"},
	}
	for _, c := range reads {
		c.remoteAddr = "192.0.2.7:1234"
		res := h.do(t, c)
		if res.status != http.StatusUnauthorized || res.errorCode(t) != "UNAUTHORIZED" || res.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s without a token = %d %s, want 401", c.method, c.path, res.status, res.body)
		}
		h.clock.pause()
		for _, token := range []string{clientToken, viewerToken, adminToken} {
			c.token = token
			if res := h.do(t, c); res.status != http.StatusOK && res.status != http.StatusCreated {
				t.Errorf("%s %s with a %s token = %d %s", c.method, c.path, token, res.status, res.body)
			}
		}
	}

	audited := len(h.audit(t))
	for _, c := range []call{
		{method: "GET", path: "/v1/admin/runtime/status"},
		{method: "GET", path: "/v1/admin/audit"},
		{method: "GET", path: "/v1/admin/export"},
		{method: "GET", path: "/system-mode/current"},
		{method: "POST", path: "/v1/admin/runtime/flags", body: `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`},
	} {
		c.token = clientToken
		if res := h.do(t, c); res.status != http.StatusForbidden || res.errorCode(t) != "FORBIDDEN" {
			t.Errorf("%s %s with a client token = %d %s, want 403", c.method, c.path, res.status, res.body)
		}
	}
	if n := len(h.audit(t)); n != audited {
		t.Errorf("a client token on the admin API made %d audit rows", n-audited)
	}

	// What the stores answered is for operators.
	h.store.down.Store(true)
	h.clock.advance(control.DefaultCacheTTL)
	h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: bulkBody, token: clientToken})
	reason := func(token string) any {
		return h.do(t, call{method: "GET", path: "/readyz", token: token}).json(t)["reason"]
	}
	probe, operator := reason(""), reason(viewerToken)
	if probe == operator {
		t.Fatalf("readyz tells a probe and an operator the same: %q", probe)
	}
	if got := reason(clientToken); got != probe {
		t.Errorf("readyz tells a client token %q, want what a probe is told: %q", got, probe)
	}
}

// ofrepMessage is one message of the OFREP event stream.
type ofrepMessage struct {
	id, event string
	data      refetchEvaluation
}

// readMessage reads the next message of an OFREP event stream, skipping
// comments.
func readMessage(t *testing.T, r *bufio.Reader) ofrepMessage {
	t.Helper()
	var m ofrepMessage
	var data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read the stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "id: "):
			m.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			m.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && data != "":
			if err := json.Unmarshal([]byte(data), &m.data); err != nil {
				t.Fatalf("message data %q: %v", data, err)
			}
			return m
		}
	}
}

// openEvents opens the OFREP event stream at uri on srv with header set.
func openEvents(t *testing.T, srv *httptest.Server, uri string, header map[string]string) (*bufio.Reader, int) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode == http.StatusOK && res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream = %v", res.Header)
	}
	return bufio.NewReader(res.Body), res.StatusCode
}

// wantRefetch fails unless m tells the provider to evaluate again for
// revision n of demo mode.
func wantRefetch(t *testing.T, m ofrepMessage, n int) {
	t.Helper()
	etag := `"` + itoa(int64(n)) + `-demo"`
	if m.event != "message" || m.id != etag || m.data != (refetchEvaluation{Type: "refetchEvaluation", ETag: etag}) {
		t.Fatalf("message = %+v, want refetchEvaluation of revision %d", m, n)
	}
}

// TestOFREPEventStream: a bulk evaluation advertises the event stream,
// which sends refetchEvaluation at connection and for every revision that
// changes a flag, and nothing for one that does not; a provider that
// reconnects naming the configuration served is told nothing at once.
func TestOFREPEventStream(t *testing.T) {
	h := newHarness(t)
	bulk := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: bulkBody}).json(t)
	streams, _ := bulk["eventStreams"].([]any)
	if len(streams) != 1 {
		t.Fatalf("eventStreams = %v, want one", bulk["eventStreams"])
	}
	stream := streams[0].(map[string]any)
	uri := stream["endpoint"].(map[string]any)["requestUri"].(string)
	if stream["type"] != "sse" || uri != ofrepEventsPath || stream["inactivityDelaySec"] != float64(ofrepInactivityDelaySec) {
		t.Fatalf("eventStreams = %v", streams)
	}

	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	r, _ := openEvents(t, srv, uri, nil)
	wantRefetch(t, readMessage(t, r), 1)
	h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"})
	wantRefetch(t, readMessage(t, r), 2)
	// Revision 3 changes a profile nobody is served: no answer changes.
	h.admin(t, "PUT", "/v1/admin/runtime/profiles/shadow", map[string]any{
		"config": map[string]any{"mastery": map[string]any{"version": "v1"}}, "phrase": "UPDATE PROFILE SHADOW", "reason": "r"})
	h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": false, "phrase": "DISABLE EXAM MODE", "reason": "done"})
	wantRefetch(t, readMessage(t, r), 4)

	again, _ := openEvents(t, srv, uri, map[string]string{"Last-Event-ID": `"4-demo"`})
	h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"})
	wantRefetch(t, readMessage(t, again), 5)
}

// TestBulkETagFollowsAnswers: the bulk ETag changes when an answer for the
// context changes, and not when a revision changes only what others see;
// a pinned session is advertised no event stream.
func TestBulkETagFollowsAnswers(t *testing.T) {
	h := newHarness(t)
	importFlag := func(vip string) {
		doc := `{"flags":{"banner":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",` +
			`"targeting":{"if":[{"==":[{"var":"targetingKey"},"` + vip + `"]},"on","off"]}}}}`
		h.admin(t, "POST", "/v1/admin/import", map[string]any{"format": "flagd", "content": doc, "phrase": "IMPORT FLAGS", "reason": "r"})
	}
	bulk := func(etag string) response {
		return h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: bulkBody, header: map[string]string{"If-None-Match": etag}})
	}
	importFlag("vip-1")
	first := bulk("")
	for _, f := range first.json(t)["flags"].([]any) {
		if md, _ := f.(map[string]any)["metadata"].(map[string]any); md == nil || md["revision"] != nil {
			t.Fatalf("bulk answer %v, want metadata without the revision, which the bulk's own metadata names", f)
		}
	}
	importFlag("vip-2") // user u sees off either way
	if res := bulk(first.header.Get("ETag")); res.status != http.StatusNotModified {
		t.Fatalf("after a change u does not see: %d, want 304", res.status)
	}
	importFlag("u")
	if res := bulk(first.header.Get("ETag")); res.status != http.StatusOK {
		t.Fatalf("after a change u sees: %d, want 200", res.status)
	}

	pinned := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: `{"context":{"targetingKey":"u","sessionId":"s-1"}}`}).json(t)
	if _, ok := pinned["eventStreams"]; ok || pinned["metadata"].(map[string]any)["pinned"] != true {
		t.Fatalf("a pinned session's bulk evaluation = %v, want no eventStreams", pinned)
	}
}

// TestStreamKey: with client tokens required, the bulk evaluation of a
// token advertises a stream URL whose key opens the event stream (a
// browser's EventSource sends no header), and nothing else.
func TestStreamKey(t *testing.T) {
	h := newHarness(t, withClientTokens)
	bulk := h.do(t, call{method: "POST", path: "/ofrep/v1/evaluate/flags", body: bulkBody, token: clientToken}).json(t)
	uri := bulk["eventStreams"].([]any)[0].(map[string]any)["endpoint"].(map[string]any)["requestUri"].(string)
	key, ok := strings.CutPrefix(uri, ofrepEventsPath+"?key=")
	if !ok || strings.Contains(uri, clientToken) {
		t.Fatalf("advertised stream %q, want the events path with a key that is not the secret", uri)
	}

	srv := httptest.NewServer(h.handler)
	t.Cleanup(srv.Close)
	r, status := openEvents(t, srv, uri, nil)
	if status != http.StatusOK {
		t.Fatalf("the advertised stream answered %d", status)
	}
	wantRefetch(t, readMessage(t, r), 1)
	for _, uri := range []string{
		ofrepEventsPath,
		ofrepEventsPath + "?key=" + key[:len(key)-2] + "AA",
		ofrepEventsPath + "?key=" + strings.Replace(key, clientName, viewerName, 1),
		"/v1/stream?key=" + key,
	} {
		if _, status := openEvents(t, srv, uri, nil); status != http.StatusUnauthorized {
			t.Errorf("GET %s = %d, want 401", uri, status)
		}
		h.clock.pause()
	}
}
