package main

import (
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
)

// requirementState is one item of GET /system-mode/current's checklist.
type requirementState struct {
	Name   string `json:"name"`
	Met    bool   `json:"met"`
	Detail string `json:"detail"`
}

// posture is GET /system-mode/current.
type posture struct {
	Mode            string             `json:"mode"`
	SetBy           string             `json:"set_by"`
	Reason          string             `json:"reason"`
	DesiredMode     string             `json:"desired_mode"`
	RestartRequired bool               `json:"restart_required"`
	ProductionReady bool               `json:"production_ready"`
	Requirements    []requirementState `json:"production_requirements"`
}

// unmetNames lists the requirements p says are not met.
func (p posture) unmetNames() []string {
	var names []string
	for _, r := range p.Requirements {
		if !r.Met {
			names = append(names, r.Name)
		}
	}
	return names
}

// toggleMode asks s to switch to target and decodes the answer.
func toggleMode(t *testing.T, s *process, target string, force bool) (int, map[string]any) {
	t.Helper()
	body := `{"target_mode":"` + target + `","phrase":"SWITCH TO ` + strings.ToUpper(target) + ` MODE","reason":"mode test"`
	if force {
		body += `,"force":true`
	}
	return post(t, s, "/system-mode/toggle", s.token, body+"}")
}

// evaluateValue evaluates key over OFREP and returns its value.
func evaluateValue(t *testing.T, s *process, key string) any {
	t.Helper()
	code, body := post(t, s, "/ofrep/v1/evaluate/flags/"+key, "", `{"context":{}}`)
	if code != http.StatusOK {
		t.Fatalf("evaluate %s = %d %v", key, code, body)
	}
	return body["value"]
}

// The start mode follows --mode and SWITCHYARD_MODE, else the database
// URL, and the system mode says how it was chosen and what production
// still needs, checked against the real stores.
func TestStartMode(t *testing.T) {
	tests := []struct {
		name       string
		env        func(t testing.TB) map[string]string
		args       []string
		mode       string
		reason     string
		unmet      []string
		production bool
	}{
		{name: "nothing set", env: func(testing.TB) map[string]string { return nil }, mode: "demo",
			reason: "default: no database URL is set",
			unmet:  []string{"database_url", "database", "migrations", "redis_url", "redis", "admin_tokens", "state_dir"}},
		{name: "database URL set", env: productionEnv, mode: "production",
			reason: "default: a database URL is set", production: true},
		{name: "SWITCHYARD_MODE demo with production configured", mode: "demo", reason: "SWITCHYARD_MODE=demo", production: true,
			env: func(t testing.TB) map[string]string {
				env := productionEnv(t)
				env["SWITCHYARD_MODE"] = "demo"
				return env
			}},
		{name: "--mode demo without a state directory", args: []string{"--mode", "demo"}, mode: "demo", reason: "--mode demo",
			unmet: []string{"state_dir"},
			env: func(t testing.TB) map[string]string {
				env := productionEnv(t)
				delete(env, "SWITCHYARD_STATE_DIR")
				return env
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServe(t, tt.env(t), tt.args...)
			defer s.stop()
			if s.token == "" {
				s.token = testViewerSecret
			}
			var p posture
			getJSON(t, s, "/system-mode/current", &p)
			if p.Mode != tt.mode || p.SetBy != "startup" || p.Reason != tt.reason || p.ProductionReady != tt.production ||
				strings.Join(p.unmetNames(), ",") != strings.Join(tt.unmet, ",") || len(p.Requirements) != 8 {
				t.Fatalf("system mode = %+v, want %s (%s) with %v unmet", p, tt.mode, tt.reason, tt.unmet)
			}
			if got := evaluateValue(t, s, "SYSTEM_MODE"); got != tt.mode {
				t.Fatalf("SYSTEM_MODE = %v, want %s", got, tt.mode)
			}
		})
	}
}

// A demo replica whose Redis does not answer refuses a switch to
// production, listing Redis, and changes nothing; forced, it records
// production for a restart and keeps serving demo.
func TestToggleWithRedisDown(t *testing.T) {
	env := productionEnv(t)
	env["SWITCHYARD_REDIS_URL"] = unreachableRedis
	s := startServe(t, env, "--mode", "demo")
	defer s.stop()
	s.token = testAdminSecret

	code, body := toggleMode(t, s, "production", false)
	e, _ := body["error"].(map[string]any)
	missing, _ := e["missing_production_requirements"].([]any)
	if code != http.StatusBadRequest || e["code"] != "PRODUCTION_REQUIREMENTS_MISSING" || len(missing) != 1 ||
		missing[0].(map[string]any)["name"] != "redis" {
		t.Fatalf("toggle = %d %v, want 400 listing redis alone", code, body)
	}
	code, body = toggleMode(t, s, "production", true)
	if code != http.StatusOK || body["restart_required"] != true || body["switched"] != false {
		t.Fatalf("forced toggle = %d %v, want restart_required", code, body)
	}
	var p posture
	getJSON(t, s, "/system-mode/current", &p)
	if p.Mode != "demo" || p.DesiredMode != "production" || !p.RestartRequired || evaluateValue(t, s, "SYSTEM_MODE") != "demo" {
		t.Fatalf("after the forced toggle: %+v", p)
	}
}

// A demo replica configured for production switches to Postgres and Redis
// live under a steady evaluation load, and back, and forth again: no
// evaluation fails or is wrong, demo's changes never reach production,
// demo starts from its fixtures again, and every switch is in
// production's audit log, whose chain verifies.
func TestLiveSwitchUnderLoad(t *testing.T) {
	env := productionEnv(t)
	s := startServe(t, env, "--mode", "demo", "--allow-live-switch")
	defer s.stop()
	s.token = testAdminSecret
	code, body := post(t, s, "/v1/admin/runtime/profile", s.token,
		`{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"a demo change"}`)
	if code != http.StatusOK {
		t.Fatalf("demo change = %d %v", code, body)
	}

	l := startLoad(s.url, wantOff, false)
	l.waitFor(t, 200)
	switchTo := func(target string) {
		t.Helper()
		code, body := toggleMode(t, s, target, false)
		p, _ := body["posture"].(map[string]any)
		if code != http.StatusOK || body["switched"] != true || p["mode"] != target {
			t.Fatalf("switch to %s = %d %v", target, code, body)
		}
		l.waitFor(t, 200)
		if got := evaluateValue(t, s, "SYSTEM_MODE"); got != target {
			t.Fatalf("SYSTEM_MODE = %v, want %s", got, target)
		}
	}

	switchTo("production")
	if got := evaluateValue(t, s, "runtime.profile"); got != "primary" {
		t.Fatalf("production's profile = %v, want primary: demo's change must not reach it", got)
	}
	l.want.Store(wantEither)
	if code := setExamMode(t, s, true); code != http.StatusOK {
		t.Fatalf("exam mode on in production: %d", code)
	}
	l.want.Store(wantOn)
	l.waitFor(t, 200)

	l.want.Store(wantEither)
	switchTo("demo")
	l.want.Store(wantOff)
	l.waitFor(t, 200)
	if got := evaluateValue(t, s, "runtime.profile"); got != "primary" {
		t.Fatalf("demo's profile after the round trip = %v, want primary from the fixtures", got)
	}

	l.want.Store(wantEither)
	switchTo("production")
	l.want.Store(wantOn)
	l.waitFor(t, 200)
	l.end()
	if l.failed.Load() != 0 || l.wrong.Load() != 0 {
		t.Fatalf("%d of %d evaluations failed and %d were wrong; first: %v",
			l.failed.Load(), l.evaluations.Load(), l.wrong.Load(), l.firstProblem.Load())
	}
	t.Logf("%d evaluations through three switches, none failed or wrong", l.evaluations.Load())

	var page struct {
		Entries []struct {
			Action  string `json:"action"`
			Outcome string `json:"outcome"`
		} `json:"entries"`
	}
	getJSON(t, s, "/v1/admin/audit", &page)
	switches := 0
	for _, e := range page.Entries {
		if e.Action == "set_system_mode" && e.Outcome == "applied" {
			switches++
		}
	}
	if switches != 3 {
		t.Fatalf("production's audit log has %d switches, want all 3", switches)
	}
	out, err := runCommand(t, env, "audit", "verify")
	if err != nil || !strings.Contains(out, "audit chain intact") {
		t.Fatalf("audit verify = %q, %v", out, err)
	}
}

// Live switching follows --allow-live-switch, else SWITCHYARD_ALLOW_LIVE_SWITCH,
// else the start mode: on in demo, off in production.
func TestAllowLiveSwitchSetting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{name: "demo", want: true},
		{name: "production", env: map[string]string{"SWITCHYARD_DATABASE_URL": "postgres://db/x"}, want: false},
		{name: "production, flag", args: []string{"--allow-live-switch"}, env: map[string]string{"SWITCHYARD_MODE": "production"}, want: true},
		{name: "production, environment", env: map[string]string{"SWITCHYARD_MODE": "production", "SWITCHYARD_ALLOW_LIVE_SWITCH": "true"}, want: true},
		{name: "demo, flag false", args: []string{"--allow-live-switch=false"}, want: false},
		{name: "demo, environment false", env: map[string]string{"SWITCHYARD_ALLOW_LIVE_SWITCH": "false"}, want: false},
		{name: "the flag wins", args: []string{"--allow-live-switch=true"}, env: map[string]string{"SWITCHYARD_MODE": "production", "SWITCHYARD_ALLOW_LIVE_SWITCH": "false"}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig("serve", tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AllowLiveSwitch != tt.want {
				t.Fatalf("AllowLiveSwitch = %v in %s mode, want %v", cfg.AllowLiveSwitch, cfg.Mode, tt.want)
			}
		})
	}
	_, err := loadConfig("serve", nil, func(k string) string { return map[string]string{"SWITCHYARD_ALLOW_LIVE_SWITCH": "sometimes"}[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SWITCHYARD_ALLOW_LIVE_SWITCH") {
		t.Fatalf("SWITCHYARD_ALLOW_LIVE_SWITCH=sometimes: error %v, want one naming the variable", err)
	}
}

// A process started in production does not switch to demo live unless
// started with --allow-live-switch: the toggle answers 403
// LIVE_SWITCH_DISABLED, saying how to allow it, and the refusal is in
// production's audit log.
func TestProductionSwitchesLiveOnlyWhenAllowed(t *testing.T) {
	env := productionEnv(t)
	for _, tt := range []struct {
		name  string
		args  []string
		allow bool
	}{
		{name: "by default", allow: false},
		{name: "with --allow-live-switch", args: []string{"--allow-live-switch"}, allow: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServe(t, env, tt.args...)
			defer s.stop()
			s.token = testAdminSecret
			var p struct {
				Mode            string `json:"mode"`
				AllowLiveSwitch bool   `json:"allow_live_switch"`
			}
			getJSON(t, s, "/system-mode/current", &p)
			if p.Mode != "production" || p.AllowLiveSwitch != tt.allow {
				t.Fatalf("system mode = %+v, want production with allow_live_switch %v", p, tt.allow)
			}
			code, body := toggleMode(t, s, "demo", false)
			if tt.allow {
				if code != http.StatusOK || body["switched"] != true {
					t.Fatalf("toggle = %d %v, want the switch made", code, body)
				}
				return
			}
			e, _ := body["error"].(map[string]any)
			if msg, _ := e["message"].(string); code != http.StatusForbidden || e["code"] != "LIVE_SWITCH_DISABLED" || !strings.Contains(msg, "SWITCHYARD_ALLOW_LIVE_SWITCH") {
				t.Fatalf("toggle = %d %v, want 403 LIVE_SWITCH_DISABLED naming the setting", code, body)
			}
			var page struct {
				Entries []struct {
					Action  string `json:"action"`
					Outcome string `json:"outcome"`
					Why     string `json:"why"`
				} `json:"entries"`
			}
			getJSON(t, s, "/v1/admin/audit", &page)
			if newest := page.Entries[0]; newest.Action != "set_system_mode" || newest.Outcome != "rejected" || !strings.HasPrefix(newest.Why, "LIVE_SWITCH_DISABLED") {
				t.Fatalf("newest audit entry = %+v, want the refused switch", newest)
			}
			if got := evaluateValue(t, s, "SYSTEM_MODE"); got != "production" {
				t.Fatalf("SYSTEM_MODE = %v, want production still", got)
			}
		})
	}
}

// loadConfig reads serve's configuration from args over the environment
// over the defaults, as switchyard serve does.
func loadConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("switchyard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := bindConfig(fs, getenv)
	if err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return cfg, cfg.resolve(getenv)
}
