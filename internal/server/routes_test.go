package server

import (
	"io"
	"log/slog"
	"net/http"
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
	engine := newHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), testConfig{}, memory.NewDemo(), time.Now)
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
