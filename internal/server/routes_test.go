package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/switchyard-dev/switchyard/openapi"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// TestRoutesMatchSpec fails when a Gin route is missing from openapi.yaml
// or the spec describes a route the server does not serve.
func TestRoutesMatchSpec(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inSpec = append(inSpec, method+" "+path)
		}
	}
	// With GET /metrics, as switchyard serve serves it unless told otherwise.
	cfg := testConfig{Telemetry: Config{Metrics: http.NotFoundHandler()}}
	engine := newHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, memory.NewDemo(), time.Now)
	var served []string
	for _, r := range engine.Routes() {
		segments := strings.Split(r.Path, "/")
		for i, s := range segments {
			if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
				segments[i] = "{" + s[1:] + "}"
			}
		}
		served = append(served, r.Method+" "+strings.Join(segments, "/"))
	}
	slices.Sort(inSpec)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(inSpec, r) {
			t.Errorf("%s is served but not in openapi.yaml", r)
		}
	}
	for _, r := range inSpec {
		if !slices.Contains(served, r) {
			t.Errorf("%s is in openapi.yaml but not served", r)
		}
	}
	if len(served) == 0 {
		t.Fatal("no routes")
	}
}

func TestUnknownRoute(t *testing.T) {
	h := newHarness(t)
	rec := serve(h, "GET", "/v2/nothing", "")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"code":"NOT_FOUND"`) {
		t.Fatalf("unknown route = %d %s, want 404 NOT_FOUND", rec.Code, rec.Body)
	}
}

// A known path asked with a method it does not serve answers 405 with
// Allow listing the methods it does, in the API's error shape.
func TestMethodNotAllowed(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		method, path, allow string
	}{
		{"GET", "/v1/admin/runtime/flags", "POST"},
		{"PATCH", "/v1/admin/runtime/profile", "POST"},
		{"DELETE", "/system-mode/current", "GET"},
		{"PUT", "/system-mode/toggle", "POST"},
		{"POST", "/healthz", "GET, HEAD"},
		{"GET", "/ofrep/v1/evaluate/flags/EXAM_MODE", "POST"},
	}
	for _, tt := range tests {
		rec := serve(h, tt.method, tt.path, "")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != tt.allow ||
			!strings.Contains(rec.Body.String(), `"code":"METHOD_NOT_ALLOWED"`) {
			t.Errorf("%s %s = %d Allow %q %s, want 405 METHOD_NOT_ALLOWED with Allow %q",
				tt.method, tt.path, rec.Code, rec.Header().Get("Allow"), rec.Body, tt.allow)
		}
	}
}

// Probes may ask /healthz and /readyz with HEAD: the status of GET, no
// body (net/http drops it, so this goes through a real server).
func TestHead(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewServer(h.handler)
	defer srv.Close()
	for _, tt := range []struct {
		path   string
		down   bool
		status int
	}{
		{"/healthz", false, http.StatusOK},
		{"/readyz", false, http.StatusOK},
		{"/readyz", true, http.StatusServiceUnavailable},
		{"/healthz", true, http.StatusOK},
	} {
		h.store.down.Store(tt.down)
		res, err := http.Head(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tt.status || len(body) != 0 {
			t.Errorf("HEAD %s with the store down %v = %d with %d bytes, want %d and none", tt.path, tt.down, res.StatusCode, len(body), tt.status)
		}
	}
}

// Every response says nosniff; what needs a token (refused or not) and
// readiness are never cached, while evaluations and the bundle keep their
// own caching.
func TestCachingHeaders(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		call    call
		noStore bool
	}{
		{call{method: "GET", path: "/v1/admin/runtime/status", token: viewerToken}, true},
		{call{method: "GET", path: "/v1/admin/runtime/status"}, true},
		{call{method: "GET", path: "/v1/admin/audit", token: adminToken}, true},
		{call{method: "GET", path: "/v1/admin/export", token: viewerToken}, true},
		{call{method: "GET", path: "/system-mode/current", token: viewerToken}, true},
		{call{method: "POST", path: "/v1/admin/runtime/flags", token: adminToken,
			body: `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`}, true},
		{call{method: "POST", path: "/v1/admin/import", token: viewerToken,
			body: importBody(t, "flagd", `{"flags":{}}`, "", false)}, true},
		{call{method: "GET", path: "/readyz"}, true},
		{call{method: "GET", path: "/healthz"}, false},
		{call{method: "POST", path: "/ofrep/v1/evaluate/flags/EXAM_MODE", body: `{"context":{}}`}, false},
		{call{method: "GET", path: "/v1/bundle"}, false},
	}
	for _, tt := range tests {
		res := h.do(t, tt.call)
		if got := res.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options %q, want nosniff", tt.call.method, tt.call.path, got)
		}
		if got := res.header.Get("Cache-Control"); (got == "no-store") != tt.noStore {
			t.Errorf("%s %s (%d): Cache-Control %q, want no-store %v", tt.call.method, tt.call.path, res.status, got, tt.noStore)
		}
	}
}

// An admin body declared as JSON, with or without a UTF-8 charset, is
// accepted; anything else is refused before it is read (TestRefusals).
func TestJSONContentTypes(t *testing.T) {
	h := newHarness(t)
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "application/json;charset=UTF-8"} {
		on := i%2 == 0
		phrase := map[bool]string{true: "ENABLE EXAM MODE", false: "DISABLE EXAM MODE"}[on]
		res := h.do(t, call{method: "POST", path: "/v1/admin/system/exam-mode", token: adminToken,
			header: map[string]string{"Content-Type": ct}, body: mustJSON(t, map[string]any{"enabled": on, "phrase": phrase, "reason": "r"})})
		if res.status != http.StatusOK {
			t.Errorf("Content-Type %q = %d %s, want 200", ct, res.status, res.body)
		}
	}
}
