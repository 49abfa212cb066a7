package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/store/storetest"
)

// unreachableURL is a database address where nothing listens.
const unreachableURL = "postgres://postgres@127.0.0.1:1/x?connect_timeout=1"

// post sends an OFREP evaluation or an admin change and decodes the answer.
func post(t *testing.T, s *process, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, m
}

// unreachableRedis is a Redis address where nothing listens.
const unreachableRedis = "redis://127.0.0.1:1/0"

// A first production start with a store down is refused, naming what is
// missing: with no last-known-good file the replica has nothing right to
// serve.
func TestProductionStartRefusedWithAStoreDown(t *testing.T) {
	tests := []struct {
		name, key, url string
		// missing is every requirement the refusal names: the migrations
		// cannot be checked without the database.
		missing []string
	}{
		{"database down", "SWITCHYARD_DATABASE_URL", unreachableURL, []string{"database", "migrations"}},
		{"Redis down", "SWITCHYARD_REDIS_URL", unreachableRedis, []string{"redis"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := productionEnv(t)
			env[tt.key] = tt.url
			_, err := runCommand(t, env, "serve", "--addr", "127.0.0.1:0")
			if !errors.Is(err, errRequirements) || strings.Count(err.Error(), "\n  - ") != len(tt.missing) {
				t.Fatalf("serve = %v, want a refusal listing exactly %v", err, tt.missing)
			}
			for _, name := range tt.missing {
				if !strings.Contains(err.Error(), "\n  - "+name+": ") {
					t.Fatalf("serve = %v, want %s listed", err, name)
				}
			}
		})
	}
}

// A database that answers but is not migrated, with migrations turned
// off, is a misconfiguration the refusal names with the versions.
func TestProductionStartRefusedWithoutMigrations(t *testing.T) {
	_, err := runCommand(t, productionEnv(t), "serve", "--addr", "127.0.0.1:0", "--migrate=false")
	if !errors.Is(err, errRequirements) || strings.Count(err.Error(), "\n  - ") != 1 ||
		!strings.Contains(err.Error(), "- migrations: ") || !strings.Contains(err.Error(), "schema is at version 0") {
		t.Fatalf("serve = %v, want a refusal naming the migrations alone", err)
	}
}

// Schema and credential problems are not outages: the start still fails.
func TestProbeDatabase(t *testing.T) {
	tests := []struct {
		name        string
		url         string
		unreachable bool
	}{
		{name: "nothing listens", url: unreachableURL, unreachable: true},
		{name: "not a URL", url: "postgres://%zz", unreachable: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := probeDatabase(context.Background(), tt.url)
			if got := errors.Is(err, errUnreachable); got != tt.unreachable {
				t.Fatalf("probeDatabase(%q) = %v; unreachable %v, want %v", tt.url, err, got, tt.unreachable)
			}
		})
	}
}

// A replica restarted while both stores are unreachable serves the
// revision the previous process wrote to the state directory, says it is
// degraded, and refuses writes.
func TestServeRestartsFromTheStateFile(t *testing.T) {
	env := productionEnv(t)
	db, dbURL := storetest.Proxied(t, env["SWITCHYARD_DATABASE_URL"])
	env["SWITCHYARD_DATABASE_URL"] = dbURL
	first := startServe(t, env)
	code, body := post(t, first, "/v1/admin/runtime/flags", testAdminSecret,
		`{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"exam"}`)
	if err := first.stop(); err != nil || code != http.StatusOK {
		t.Fatalf("change = %d %v, stop = %v", code, body, err)
	}

	db.Cut()
	env["SWITCHYARD_REDIS_URL"] = unreachableRedis
	second := startServe(t, env)
	defer func() {
		if err := second.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	code, body = post(t, second, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{}}`)
	md, _ := body["metadata"].(map[string]any)
	if code != http.StatusOK || body["value"] != true || body["reason"] != "STALE" || md["stale"] != true || md["revision"] != float64(2) {
		t.Fatalf("EXAM_MODE = %d %v, want true, STALE, stale, revision 2 from the state file", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, second.url+"/readyz", nil)
	code, body = send(t, req)
	if code != http.StatusServiceUnavailable || body["status"] != "degraded" ||
		!strings.Contains(body["reason"].(string), "last-known-good revision 2") {
		t.Fatalf("readyz = %d %v, want 503 degraded naming the state file", code, body)
	}
	code, body = post(t, second, "/v1/admin/runtime/flags", testAdminSecret,
		`{"flag":"EXAM_MODE","value":false,"phrase":"DISABLE EXAM MODE","reason":"exam over"}`)
	if code != http.StatusServiceUnavailable {
		t.Fatalf("a write without the database = %d %v, want 503", code, body)
	}
}

// A replica pointed at another database, which does not answer, does not
// serve the state file the previous database's revision left: for that
// database it is a first start, refused with the reason.
func TestServeRefusesAnotherDatabasesStateFile(t *testing.T) {
	env := productionEnv(t)
	first := startServe(t, env)
	code, body := post(t, first, "/v1/admin/runtime/flags", testAdminSecret,
		`{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"exam"}`)
	if err := first.stop(); err != nil || code != http.StatusOK {
		t.Fatalf("change = %d %v, stop = %v", code, body, err)
	}

	env["SWITCHYARD_DATABASE_URL"] = unreachableURL
	_, err := runCommand(t, env, "serve", "--addr", "127.0.0.1:0")
	if !errors.Is(err, errRequirements) || !strings.Contains(err.Error(), "the last-known-good file cannot stand in meanwhile") ||
		!strings.Contains(err.Error(), `not the one configured ("127.0.0.1:1/x")`) {
		t.Fatalf("serve over another, unreachable database = %v, want a refusal saying the state file is another database's", err)
	}
}

// A replica pointed at another database that answers serves that
// database, and warns that its state file was another database's.
func TestServeOverAnotherDatabaseIgnoresTheStateFile(t *testing.T) {
	env := productionEnv(t)
	first := startServe(t, env)
	code, body := post(t, first, "/v1/admin/runtime/flags", testAdminSecret,
		`{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"exam"}`)
	if err := first.stop(); err != nil || code != http.StatusOK {
		t.Fatalf("change = %d %v, stop = %v", code, body, err)
	}

	// Another installation: its own database schema and Redis prefix,
	// the same state directory.
	other := productionEnv(t)
	other["SWITCHYARD_STATE_DIR"] = env["SWITCHYARD_STATE_DIR"]
	logs := &storetest.LogBuffer{}
	second := startServeLogging(t, other, logs)
	defer func() {
		if err := second.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	code, body = post(t, second, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{}}`)
	md, _ := body["metadata"].(map[string]any)
	if code != http.StatusOK || body["value"] != false || body["reason"] == "STALE" || md["revision"] != float64(1) {
		t.Fatalf("EXAM_MODE = %d %v, want the new database's false at revision 1", code, body)
	}
	if !strings.Contains(logs.String(), "the state file cannot stand in for this database") {
		t.Fatalf("no warning about the other database's state file; log:\n%s", logs)
	}
}

// A database server that answers with an error is no outage: the probe
// says it answered, and the start is refused naming the real problem even
// with a last-known-good file to serve.
func TestServeFailsWhenTheDatabaseRefuses(t *testing.T) {
	env := productionEnv(t)
	first := startServe(t, env)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(env["SWITCHYARD_DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/switchyard_no_such_database"
	if err := probeDatabase(context.Background(), u.String()); err != nil {
		t.Fatalf("probeDatabase of a missing database = %v, want nil: the server answered", err)
	}
	env["SWITCHYARD_DATABASE_URL"] = u.String()
	_, err = runCommand(t, env, "serve", "--addr", "127.0.0.1:0")
	if !errors.Is(err, errRequirements) || !strings.Contains(err.Error(), "- database: ") || !strings.Contains(err.Error(), "switchyard_no_such_database") {
		t.Fatalf("serve over a missing database = %v, want a refusal naming the database's error", err)
	}
}

// A replica restarted while its database hangs probes it once, within
// the probe's deadline, and serves: sessions pinned before the restart
// keep their pins from the state directory, and a new session is pinned
// here, saying so, rather than failing.
func TestServeRestartsThroughAHungDatabase(t *testing.T) {
	env := productionEnv(t)
	db, dbURL := storetest.Proxied(t, env["SWITCHYARD_DATABASE_URL"])
	env["SWITCHYARD_DATABASE_URL"] = dbURL
	first := startServe(t, env)
	code, body := post(t, first, "/v1/admin/runtime/flags", testAdminSecret,
		`{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"exam"}`)
	if code != http.StatusOK {
		t.Fatalf("change = %d %v", code, body)
	}
	if code, body := post(t, first, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{"sessionId":"before"}}`); code != http.StatusOK || body["value"] != true {
		t.Fatalf("pin before the restart = %d %v", code, body)
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	db.Hang()
	env["SWITCHYARD_REDIS_URL"] = unreachableRedis
	before := db.Accepted()
	second := startServe(t, env)
	defer func() {
		if err := second.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if n := db.Accepted() - before; n != 1 {
		t.Errorf("the hung database was connected to %d times before serving, want one probe", n)
	}
	code, body = post(t, second, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{"sessionId":"before"}}`)
	md, _ := body["metadata"].(map[string]any)
	if code != http.StatusOK || body["value"] != true || body["reason"] == "STALE" || md["pinned"] != true || md["revision"] != float64(2) {
		t.Fatalf("the session pinned before the restart = %d %v, want its pin, revision 2", code, body)
	}
	code, body = post(t, second, "/ofrep/v1/evaluate/flags/EXAM_MODE", "", `{"context":{"sessionId":"after"}}`)
	md, _ = body["metadata"].(map[string]any)
	if code != http.StatusOK || body["value"] != true || body["reason"] != "STALE" || md["pin"] != "local" {
		t.Fatalf("a new session with the database hung = %d %v, want 200, STALE, pinned here", code, body)
	}
}
