package server

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

func TestBundle(t *testing.T) {
	h := newHarness(t)
	first := h.do(t, call{method: "GET", path: "/v1/bundle", token: viewerToken})
	var b switchyard.Bundle
	if err := json.Unmarshal(first.body, &b); err != nil {
		t.Fatal(err)
	}
	tag1 := `"` + b.Revision.ID + `-demo"`
	if first.status != http.StatusOK || len(b.Revision.ID) != 32 || first.header.Get("ETag") != tag1 ||
		first.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("bundle = %d %v %s, want 200 with ETag \"<revision ID>-demo\"", first.status, first.header, first.body)
	}
	// The bundle compiles into the flag set the server evaluates.
	fs, err := evaluator.Compile(b.Revision, b.Mode)
	if err != nil {
		t.Fatal(err)
	}
	if r := fs.Evaluate("runtime.profile", nil); r.Value != "primary" || b.Mode != "demo" {
		t.Fatalf("compiled bundle: runtime.profile = %v, mode %q", r.Value, b.Mode)
	}
	h.admin(t, "POST", "/v1/admin/runtime/flags", map[string]any{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam"})
	second := h.current(t)
	tag2 := `"` + second.ID + `-demo"`

	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantETag   string
		wantCache  string
	}{
		{"current, changed since", call{method: "GET", path: "/v1/bundle", header: map[string]string{"If-None-Match": tag1}},
			http.StatusOK, tag2, "no-cache"},
		{"current, weak match", call{method: "GET", path: "/v1/bundle", header: map[string]string{"If-None-Match": "W/" + tag2}},
			http.StatusNotModified, tag2, "no-cache"},
		{"current, named by number as before revisions had IDs", call{method: "GET", path: "/v1/bundle", header: map[string]string{"If-None-Match": `"2-demo"`}},
			http.StatusOK, tag2, "no-cache"},
		{"old revision", call{method: "GET", path: "/v1/bundle?revision=1"},
			http.StatusOK, tag1, "public, max-age=31536000, immutable"},
		{"old revision, cached", call{method: "GET", path: "/v1/bundle?revision=1", header: map[string]string{"If-None-Match": tag1}},
			http.StatusNotModified, tag1, "public, max-age=31536000, immutable"},
		{"unknown revision", call{method: "GET", path: "/v1/bundle?revision=99"}, http.StatusNotFound, "", ""},
		{"bad revision", call{method: "GET", path: "/v1/bundle?revision=x", breaksSpec: true}, http.StatusBadRequest, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, tt.call)
			if res.status != tt.wantStatus || res.header.Get("ETag") != tt.wantETag ||
				(tt.wantCache != "" && res.header.Get("Cache-Control") != tt.wantCache) {
				t.Fatalf("= %d ETag %q Cache-Control %q %s, want %d ETag %q Cache-Control %q", res.status,
					res.header.Get("ETag"), res.header.Get("Cache-Control"), res.body, tt.wantStatus, tt.wantETag, tt.wantCache)
			}
		})
	}
}

func TestBundleBeforeTheStoreAnswers(t *testing.T) {
	h := newStore(t)
	h.store.down.Store(true)
	h.start()
	res := h.do(t, call{method: "GET", path: "/v1/bundle"})
	if res.status != http.StatusServiceUnavailable || res.errorCode(t) != "UNAVAILABLE" {
		t.Fatalf("bundle with the store down = %d %s, want 503: the conservative fallback is no revision", res.status, res.body)
	}
}
