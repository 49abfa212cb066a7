package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// boolFlag is a flagd flag serving variant on or off.
func boolFlag(key, variant string) string {
	return `"` + key + `":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"` + variant + `"}`
}

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFlagFiles: the flag files are served at load, a flag that fails
// validation answers PARSE_ERROR with its reason while the rest is
// served, and each change to a file (an atomic replace, an in-place
// write) is a revision audited as the flag files'; a file that breaks or
// goes away keeps what it held.
func TestFlagFiles(t *testing.T) {
	dir := t.TempDir()
	jsonPath := writeFile(t, dir, "flags.json", `{"flags":{`+boolFlag("banner", "off")+`,"broken":{"state":"MAYBE","variants":{"a":1}}}}`)
	yamlPath := writeFile(t, dir, "flags.yaml", "flags:\n  theme:\n    state: ENABLED\n    variants: {dark: dark, light: light}\n    defaultVariant: dark\n")
	logs := &storetest.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	st := memory.NewDemo()
	core := control.New(logger, control.Config{}, st)
	ctx := t.Context()
	ff, err := loadFlagFiles(ctx, logger, core, []string{"file:" + jsonPath, yamlPath})
	if err != nil {
		t.Fatal(err)
	}
	eval := func(key string) evaluator.Result {
		t.Helper()
		ev, err := core.Evaluation(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return ev.Result(key, nil)
	}
	want := func(when, key string, value any) {
		t.Helper()
		if r := eval(key); r.Value != value || r.ErrorCode != "" {
			t.Fatalf("%s: %s = %v (%s %s), want %v", when, key, r.Value, r.ErrorCode, r.ErrorMessage, value)
		}
	}
	want("at load", "banner", false)
	want("at load", "theme", "dark")
	if r := eval("broken"); r.ErrorCode != evaluator.ParseError || !strings.Contains(r.ErrorMessage, "state") {
		t.Fatalf("the invalid flag = %+v, want PARSE_ERROR naming its state", r)
	}
	if !strings.Contains(logs.String(), "flag=broken") || !strings.Contains(logs.String(), "PARSE_ERROR") {
		t.Fatalf("the invalid flag is not reported at load:\n%s", logs)
	}

	// An editor's atomic replace: a new file renamed over the old.
	tmp := writeFile(t, dir, "flags.json.tmp", `{"flags":{`+boolFlag("banner", "on")+`}}`)
	if err := os.Rename(tmp, jsonPath); err != nil {
		t.Fatal(err)
	}
	ff.poll(ctx)
	want("after an atomic replace", "banner", true)
	if r := eval("broken"); r.ErrorCode != evaluator.FlagNotFound {
		t.Fatalf("a flag removed from its file = %+v, want FLAG_NOT_FOUND", r)
	}
	// An in-place write.
	writeFile(t, dir, "flags.yaml", "flags:\n  theme:\n    state: ENABLED\n    variants: {dark: dark, light: light}\n    defaultVariant: light\n")
	ff.poll(ctx)
	want("after an in-place write", "theme", "light")

	// Nothing changed, nothing applied.
	before := current(t, st).Number
	ff.poll(ctx)
	if n := current(t, st).Number; n != before {
		t.Fatalf("a poll with no change made revision %d", n)
	}
	// A broken file and a removed one keep what they held.
	writeFile(t, dir, "flags.json", `{"flags":`)
	if err := os.Remove(yamlPath); err != nil {
		t.Fatal(err)
	}
	ff.poll(ctx)
	want("with one file broken", "banner", true)
	want("with one file gone", "theme", "light")
	if !strings.Contains(logs.String(), "does not load") {
		t.Fatalf("a file that does not load is not logged:\n%s", logs)
	}

	entries, err := st.Audit(context.Background(), store.AuditQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Actor != flagFilesActor || entries[0].Action != "serve_flag_files" || entries[0].Outcome != store.OutcomeApplied {
		t.Fatalf("audit = %+v, want the three revisions the files made, by %s", entries, flagFilesActor)
	}
}

// current returns st's current revision.
func current(t *testing.T, st store.Store) *switchyard.Revision {
	t.Helper()
	rev, err := st.Current(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// TestServeFlags: serve --flags serves a flagd file over OFREP from the
// start and follows it; production refuses the setting.
func TestServeFlags(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "flags.json", `{"flags":{`+boolFlag("banner", "off")+`}}`)
	s := startServe(t, nil, "--flags", "file:"+path)
	defer s.stop()
	banner := func() string {
		res, err := http.Post(s.url+"/ofrep/v1/evaluate/flags/banner", "application/json", strings.NewReader(`{"context":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return string(body)
	}
	if got := banner(); !strings.Contains(got, `"value":false`) {
		t.Fatalf("banner at start = %s", got)
	}
	writeFile(t, dir, "flags.json", `{"flags":{`+boolFlag("banner", "on")+`}}`)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(banner(), `"value":true`) {
		if time.Now().After(deadline) {
			t.Fatalf("the change to the file is not served after 10s: %s", banner())
		}
		time.Sleep(50 * time.Millisecond) // the server polls its files every second
	}

	err := run(t.Context(), []string{"serve", "--mode", "production", "--flags", path}, func(string) string { return "" }, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "demo mode only") {
		t.Fatalf("production with --flags: %v, want a refusal", err)
	}
}

// TestClientSettings: the settings of clients parse as documented, and
// what would open the admin API to any origin is refused.
func TestClientSettings(t *testing.T) {
	env := map[string]string{"SWITCHYARD_FLAGS": "a.json, file:b.yaml", "SWITCHYARD_CORS_ORIGINS": "https://App.example.com:8443, *"}
	getenv := func(k string) string { return env[k] }
	cfg, err := loadConfig("serve", nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.FlagFiles.String(); got != "a.json,file:b.yaml" || cfg.RequireClientToken ||
		strings.Join(cfg.CORSOrigins, " ") != "https://app.example.com:8443 *" {
		t.Fatalf("from the environment: flags %q, require %v, origins %v", got, cfg.RequireClientToken, cfg.CORSOrigins)
	}
	cfg, err = loadConfig("serve", []string{"--flags", "c.json", "--flags", "d.json", "--require-client-token", "--cors-admin-origins", "https://ops.example"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.FlagFiles.String(); got != "c.json,d.json" || !cfg.RequireClientToken || strings.Join(cfg.CORSAdminOrigins, " ") != "https://ops.example" {
		t.Fatalf("from flags: flags %q (the environment's replaced), require %v, admin origins %v", got, cfg.RequireClientToken, cfg.CORSAdminOrigins)
	}
	for _, args := range [][]string{
		{"--cors-admin-origins", "*"},
		{"--cors-origins", "https://app.example.com/path"},
		{"--cors-origins", "app.example.com"},
	} {
		if _, err := loadConfig("serve", args, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
