package provider_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/provider"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// testbedFeatures are the flagd-testbed provider suites that fit a
// provider backed by Switchyard and that this test runs.
var testbedFeatures = []string{"evaluation.feature", "metadata.feature", "disabled.feature"}

// testbedSeeded are the flag files whose deliberately invalid targeting
// the server's import refuses: Revision.Validate rejects them, yet their
// flags must be served (and fail at evaluation, as flagd's do). They are
// put into the served revision directly, as evaluator/conformance_test.go's
// loadTestkit does; every other file goes through POST /v1/admin/import.
var testbedSeeded = []string{"edge-case-flags.json", "evaluator-refs.json"}

// testbedSkips are the scenarios that are specific to flagd's own provider
// or that contradict another scenario, by tag, with the reason printed.
var testbedSkips = []struct{ tag, reason string }{
	{"@metadata-provider", "needs a flagd selector naming a flag set with its own metadata (rawflags/selector-flag-combined-metadata.json), which the merged flag set cannot represent"},
	{"@deprecated", "the deprecated @no-default outline expects FLAG_NOT_FOUND where its replacement @no-default-variant, which runs, expects DEFAULT for the same flags"},
}

// allFlagsSelector is the flagd selector of the merged flag set: every
// flags/*.json except selector*, the one set this test serves.
const allFlagsSelector = "flags/allFlags.json"

// TestFlagdTestbedProviderSuites runs the flagd-testbed provider suites
// evaluation, metadata and disabled through the provider, in both modes,
// against a real server holding every flags/*.json except selector* as
// one flag set. Each scenario's "stable flagd provider" is a new provider
// Init'ed against that server; evaluations go through the SDK client.
func TestFlagdTestbedProviderSuites(t *testing.T) {
	dir := conformanceDir(t)
	ts := newTestServer(t, memory.New(testbedRevision(t, filepath.Join(dir, "flagd-testbed", "flags"))))
	var paths []string
	for _, f := range testbedFeatures {
		paths = append(paths, filepath.Join(dir, "flagd-testbed", "gherkin", f))
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			var tally testbedTally
			suite := godog.TestSuite{
				Name: "flagd-testbed-" + m.name,
				ScenarioInitializer: func(sc *godog.ScenarioContext) {
					s := &testbedScenario{scenario: &scenario{}, url: ts.url, mode: m.mode, tally: &tally}
					s.register(sc)
				},
				Options: &godog.Options{
					Format:   "progress",
					Output:   &strings.Builder{},
					NoColors: true,
					Paths:    paths,
					Strict:   true,
					TestingT: t,
				},
			}
			status := suite.Run()
			for _, reason := range tally.reasons() {
				t.Logf("skipped: %s", reason)
			}
			t.Logf("%s: %d scenarios passed, %d skipped, %d failed", m.name, tally.passed, tally.skipped, tally.failed)
			switch {
			case status != 0:
				t.Fatalf("flagd-testbed provider suites through the %s provider failed (status %d)", m.name, status)
			case tally.failed > 0 || tally.passed == 0:
				t.Fatalf("%d scenarios failed, %d passed", tally.failed, tally.passed)
			}
		})
	}
}

// testbedRevision builds the server's revision of the merged flag set.
// The files that validate are merged into one flagd document, with the
// $evaluators of every file (zero-flags.json refers to evaluator-refs.json's
// is_ballmer), and imported through the server's own POST /v1/admin/import
// on a scratch server, so the conversion and validation are the real ones.
// The flags of the files in testbedSeeded, which Validate refuses by
// design, are then added to the result directly: an import validates the
// whole next revision, so it cannot run once they are in.
func testbedRevision(t *testing.T, flagsDir string) *switchyard.Revision {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(flagsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	imported := map[string]any{}
	evaluators := map[string]json.RawMessage{}
	seeded := map[string]switchyard.Flag{}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "selector") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Flags      map[string]json.RawMessage `json:"flags"`
			Evaluators map[string]json.RawMessage `json:"$evaluators"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		maps.Copy(evaluators, raw.Evaluators)
		if slices.Contains(testbedSeeded, name) {
			doc, err := evaluator.ParseDocument(data)
			if err != nil {
				t.Fatalf("parse %s: %v", name, err)
			}
			maps.Copy(seeded, doc.Flags)
			continue
		}
		for k, fl := range raw.Flags {
			if _, dup := imported[k]; dup {
				t.Fatalf("%s: flag %q is defined twice in the merged set", name, k)
			}
			imported[k] = fl
		}
	}
	merged, err := json.Marshal(map[string]any{"flags": imported, "$evaluators": evaluators})
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New(switchyard.InitialRevision(time.Now()))
	importFlagd(t, newTestServer(t, st), merged)
	rev, err := st.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k, fl := range seeded {
		if _, dup := rev.Flags[k]; dup {
			t.Fatalf("flag %q is defined twice in the merged set", k)
		}
		rev.Flags[k] = fl
	}
	return rev
}

// importFlagd posts one flagd document to POST /v1/admin/import.
func importFlagd(t *testing.T, ts *testServer, data []byte) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"format": "flagd", "content": string(data),
		"reason": "flagd-testbed provider suites", "phrase": "IMPORT FLAGS",
	})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/admin/import", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	ts.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("import: %d %s", rec.Code, rec.Body)
	}
}

// testbedTally counts one mode's scenarios by outcome.
type testbedTally struct {
	mu                      sync.Mutex
	passed, skipped, failed int
	skips                   map[string]int
}

func (ty *testbedTally) add(reason string, err error) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	switch {
	case err != nil && !errors.Is(err, godog.ErrSkip):
		ty.failed++
	case reason != "":
		ty.skipped++
		if ty.skips == nil {
			ty.skips = map[string]int{}
		}
		ty.skips[reason]++
	default:
		ty.passed++
	}
}

// reasons lists the skip reasons with their counts.
func (ty *testbedTally) reasons() []string {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	var out []string
	for r, n := range ty.skips {
		out = append(out, fmt.Sprintf("%d scenarios: %s", n, r))
	}
	slices.Sort(out)
	return out
}

// testbedScenario is the state of one provider-suite scenario: the
// evaluator conformance steps' state plus the provider it creates.
type testbedScenario struct {
	*scenario
	url   string
	mode  provider.Mode
	tally *testbedTally
	p     *provider.Provider
	skip  string
}

// skipBecause marks the scenario skipped for reason.
func (s *testbedScenario) skipBecause(reason string) error {
	s.skip = reason
	return godog.ErrSkip
}

func (s *testbedScenario) register(sc *godog.ScenarioContext) {
	sc.Before(func(ctx context.Context, p *godog.Scenario) (context.Context, error) {
		for _, tag := range p.Tags {
			for _, k := range testbedSkips {
				if tag.Name == k.tag {
					return ctx, s.skipBecause(k.tag + ": " + k.reason)
				}
			}
		}
		return ctx, nil
	})
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		if s.p != nil {
			s.p.Shutdown()
		}
		s.tally.add(s.skip, err)
		return ctx, nil
	})
	sc.Step(`^an option "([^"]*)" of type "([^"]*)" with value "([^"]*)"$`, s.option)
	sc.Step(`^a stable flagd provider$`, s.stableProvider)
	sc.Step(`^a metadata flagd provider$`, func() error {
		return s.skipBecause("a metadata flagd provider is flagd's own, configured by a selector")
	})
	sc.Step(`^a ([A-Za-z]+)-flag with key "([^"]*)" and a default value "(.*)"$`, s.flag)
	s.registerShared(sc)
}

// option applies a flagd provider option. Our provider has no cache to
// configure, so "cache" is accepted as a no-op; the one selector the
// server represents is the merged set it serves; any other selector names
// a flag set of flagd's own, and the scenario is skipped.
func (s *testbedScenario) option(name, typeName, value string) error {
	switch {
	case name == "cache" && typeName == "CacheType":
		return nil
	case name == "selector" && value == allFlagsSelector:
		return nil
	case name == "selector":
		return s.skipBecause(fmt.Sprintf("selector %q names a flagd flag set the merged set cannot represent", value))
	}
	return fmt.Errorf("option %q of type %q is not one this provider has", name, typeName)
}

// testbedDomains numbers the OpenFeature domains of the scenarios'
// providers, so no two scenarios share one.
var testbedDomains atomic.Int64

// stableProvider Inits a new provider against the test server under a
// domain of its own and points the scenario's client at it.
func (s *testbedScenario) stableProvider(ctx context.Context) error {
	p, err := provider.New(s.url, provider.WithMode(s.mode))
	if err != nil {
		return err
	}
	s.p = p
	domain := fmt.Sprintf("flagd-testbed-%d", testbedDomains.Add(1))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := openfeature.SetNamedProviderWithContextAndWait(ctx, domain, p); err != nil {
		return err
	}
	s.client = openfeature.NewClient(domain)
	return nil
}
