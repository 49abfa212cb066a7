package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// The tokens of the API server the import and export tests talk to.
const (
	testAdminToken  = "cli-admin-token"
	testViewerToken = "cli-viewer-token"
)

const launchDarklyFile = "../../importer/testdata/launchdarkly.json"

// apiServer is the HTTP API over a fresh demo memory store.
func apiServer(t *testing.T) (*httptest.Server, *memory.Store) {
	t.Helper()
	st := memory.NewDemo()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	handler := server.New(logger, control.New(logger, control.Config{Mode: switchyard.ModeDemo}, st), server.Config{
		Auth: server.NewAuthenticator([]server.Token{
			{Operator: switchyard.Operator{Name: "cli-admin", Role: switchyard.RoleAdmin}, Secret: testAdminToken},
			{Operator: switchyard.Operator{Name: "cli-viewer", Role: switchyard.RoleViewer}, Secret: testViewerToken},
		}),
	})
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	return ts, st
}

// runCLI runs switchyard with args and the environment env, and returns
// its stdout, stderr and error.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestImportDryRun(t *testing.T) {
	// No server: a dry run converts locally. The flag after FILE counts.
	stdout, stderr, err := runCLI(t, nil, "import", "--from", "launchdarkly", launchDarklyFile, "--environment", "production", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := evaluator.ParseDocument([]byte(stdout))
	if err != nil {
		t.Fatalf("stdout is not a flagd document: %v\n%s", err, stdout)
	}
	if _, ok := doc.Flags["checkout-redesign"]; !ok || len(doc.Flags) != 5 {
		t.Fatalf("dry run flags: %v", doc.Flags)
	}
	for _, want := range []string{"report: 5 notes", "checkout-redesign at environments.production.rules[2]: unsupported: ", "module.search: unsupported: "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("report on stderr lacks %q:\n%s", want, stderr)
		}
	}
}

func TestImportAndExport(t *testing.T) {
	ts, st := apiServer(t)
	env := map[string]string{"SWITCHYARD_SERVER": ts.URL, "SWITCHYARD_TOKEN": testAdminToken}
	stdout, stderr, err := runCLI(t, env, "import", "--from", "launchdarkly", "--environment", "production", "--reason", "moving off LaunchDarkly", launchDarklyFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "imported 5 flags from " + launchDarklyFile + " as revision 2 (audit entry 1): banner-color, checkout-redesign, legacy-search, maintenance-banner, pricing-experiment\n"
	if stdout != want || !strings.Contains(stderr, "report: 5 notes") {
		t.Fatalf("import printed\n%s\n%s\nwant\n%s", stdout, stderr, want)
	}
	entries, err := st.Audit(context.Background(), store.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if e := entries[0]; e.Action != "import_flags" || e.Phrase != switchyard.ImportPhrase || e.Reason != "moving off LaunchDarkly" || e.Revision != 2 {
		t.Fatalf("audit entry %+v", e)
	}

	// Export with a viewer token, to stdout and to a file.
	out := filepath.Join(t.TempDir(), "flags.json")
	viewer := map[string]string{"SWITCHYARD_TOKEN": testViewerToken}
	stdout, stderr, err = runCLI(t, viewer, "export", "--server", ts.URL, "--format", "flagd", "--output", out)
	if err != nil || stdout != "" || !strings.Contains(stderr, "exported revision 2 to "+out) {
		t.Fatalf("export to a file: %v %q %q", err, stdout, stderr)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	toStdout, _, err := runCLI(t, viewer, "export", "--server", ts.URL)
	if err != nil || toStdout != string(written) {
		t.Fatalf("export to stdout differs from the file: %v", err)
	}
	doc, err := evaluator.ParseDocument(written)
	if err != nil {
		t.Fatalf("the export is not a flagd document: %v", err)
	}
	for _, k := range []string{"checkout-redesign", "pricing-experiment", "EXAM_MODE", "module.mastery"} {
		if _, ok := doc.Flags[k]; !ok {
			t.Errorf("the export has no flag %s", k)
		}
	}
	// The exported flags evaluate as the imported ones: a user in the
	// individual targets and one in the 25% fallthrough rollout (computed
	// from LaunchDarkly's SHA-1 bucketing outside Go).
	rev := switchyard.InitialRevision(time.Unix(0, 0))
	rev.Flags, rev.Evaluators = doc.Flags, doc.Evaluators
	fs, err := evaluator.Compile(rev, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for key, variant := range map[string]string{"user-vip": "on", "crowd-0": "off", "crowd-1": "on"} {
		if got := fs.Evaluate("checkout-redesign", map[string]any{"targetingKey": key}); got.Variant != variant {
			t.Errorf("exported checkout-redesign for %s = %q, want %q", key, got.Variant, variant)
		}
	}
	// The export imports back as flagd; the runtime's own flags are
	// reported and skipped.
	stdout, stderr, err = runCLI(t, nil, "import", "--from", "flagd", "--dry-run", out)
	if err != nil {
		t.Fatal(err)
	}
	again, err := evaluator.ParseDocument([]byte(stdout))
	if err != nil || len(again.Flags) != 5 || !strings.Contains(stderr, "module.mastery: unsupported: not imported") {
		t.Fatalf("re-import of the export: %v, %d flags\n%s", err, len(again.Flags), stderr)
	}
}

func TestImportExportErrors(t *testing.T) {
	ts, _ := apiServer(t)
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"key": "bad-flag", "variations": [{"value": true}], "environments": {"production": {"on": true,
		"fallthrough": {"variation": 0}, "rules": [{"variation": 0, "clauses": [{"attribute": "a", "op": "isOneOf", "values": ["x"]}]}]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	admin := map[string]string{"SWITCHYARD_SERVER": ts.URL, "SWITCHYARD_TOKEN": testAdminToken}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no file", admin, []string{"import", "--from", "flagd", "--reason", "r"}, "exactly one FILE"},
		{"unknown format", admin, []string{"import", "--from", "split", "--reason", "r", launchDarklyFile}, `--from "split": use one of flagd, launchdarkly`},
		{"no reason", admin, []string{"import", "--from", "launchdarkly", launchDarklyFile}, "--reason is required"},
		{"no token", map[string]string{"SWITCHYARD_SERVER": ts.URL}, []string{"import", "--from", "launchdarkly", "--reason", "r", launchDarklyFile}, "no token"},
		{"missing file", admin, []string{"import", "--from", "flagd", "--reason", "r", "no-such-file.json"}, "no-such-file.json"},
		{"bad file on the server", admin, []string{"import", "--from", "launchdarkly", "--reason", "r", bad},
			`INVALID_REQUEST: flag "bad-flag": environments.production.rules[0].clauses[0].op: unknown operator "isOneOf"`},
		{"bad file in a dry run", nil, []string{"import", "--from", "launchdarkly", "--dry-run", bad}, `flag "bad-flag": environments.production.rules[0].clauses[0].op`},
		{"viewer imports", map[string]string{"SWITCHYARD_SERVER": ts.URL, "SWITCHYARD_TOKEN": testViewerToken},
			[]string{"import", "--from", "launchdarkly", "--environment", "production", "--reason", "r", launchDarklyFile}, "FORBIDDEN: "},
		{"wrong token", map[string]string{"SWITCHYARD_SERVER": ts.URL, "SWITCHYARD_TOKEN": "nope"}, []string{"export"}, "UNAUTHORIZED: "},
		{"export format", admin, []string{"export", "--format", "yaml"}, `--format "yaml": flagd is the only export format`},
		{"no server", map[string]string{"SWITCHYARD_SERVER": "http://127.0.0.1:1", "SWITCHYARD_TOKEN": "t"}, []string{"export"}, "no answer from http://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, tt.env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
