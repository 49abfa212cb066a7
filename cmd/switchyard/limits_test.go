package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// createSession creates session id on s, with token when it is set, and
// returns the status, the Retry-After header and the decoded body.
func createSession(t *testing.T, s *process, token, id string) (int, string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/v1/sessions", strings.NewReader(`{"session_id":"`+id+`"}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("create %s: %d, %v", id, resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), m
}

// `serve --max-sessions 5 --session-burst 3` in each mode: an anonymous
// client gets three new sessions, then 429 RATE_LIMITED; a client with a
// token has a burst of its own; past five live sessions demo mode drops
// the oldest and production refuses new ones with 429
// SESSION_LIMIT_REACHED; and an evaluation naming a new session past a
// limit is served unpinned, saying which limit.
func TestSessionLimits(t *testing.T) {
	type step struct {
		id, client string // client: "anonymous" or "token"
		status     int
		code       string
	}
	tests := []struct {
		mode  string
		env   func(t *testing.T) map[string]string
		steps []step
		// dropped is a session the store no longer holds; evalClient
		// evaluates a new session, and pin is what its metadata says.
		dropped, evalClient, pin string
	}{
		{
			mode: "demo",
			env: func(t *testing.T) map[string]string {
				return map[string]string{"SWITCHYARD_TOKENS": "admin:" + testAdminSecret}
			},
			steps: []step{
				{"s-0", "anonymous", 201, ""}, {"s-1", "anonymous", 201, ""}, {"s-2", "anonymous", 201, ""},
				{"s-3", "anonymous", 429, "RATE_LIMITED"}, {"s-1", "anonymous", 200, ""},
				{"t-0", "token", 201, ""}, {"t-1", "token", 201, ""}, {"t-2", "token", 201, ""},
			},
			dropped: "s-0", evalClient: "anonymous", pin: "rate_limited",
		},
		{
			mode: "production",
			env:  func(t *testing.T) map[string]string { return productionEnv(t) },
			steps: []step{
				{"s-0", "anonymous", 201, ""}, {"s-1", "anonymous", 201, ""}, {"s-2", "anonymous", 201, ""},
				{"s-3", "anonymous", 429, "RATE_LIMITED"}, {"s-1", "anonymous", 200, ""},
				{"t-0", "token", 201, ""}, {"t-1", "token", 201, ""}, {"t-2", "token", 429, "SESSION_LIMIT_REACHED"},
				{"s-0", "token", 200, ""},
			},
			evalClient: "token", pin: "session_limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			s := startServe(t, tt.env(t), "--max-sessions", "5", "--session-burst", "3", "--session-rate", "0.01")
			defer s.stop()
			token := func(client string) string {
				if client == "token" {
					return testAdminSecret
				}
				return ""
			}
			for _, st := range tt.steps {
				status, retry, body := createSession(t, s, token(st.client), st.id)
				if status != st.status {
					t.Fatalf("%s creates %s: %d %v, want %d", st.client, st.id, status, body, st.status)
				}
				if st.code == "" {
					continue
				}
				if e, _ := body["error"].(map[string]any); e["code"] != st.code || retry == "" || e["retry_after_seconds"] == nil {
					t.Fatalf("%s creates %s: %d %v with Retry-After %q, want %s with when to try again", st.client, st.id, status, body, retry, st.code)
				}
			}
			if tt.dropped != "" {
				req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/sessions/"+tt.dropped, nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotFound {
					t.Fatalf("GET %s, the oldest past the bound = %d, want 404", tt.dropped, resp.StatusCode)
				}
			}
			status, r := post(t, s, "/ofrep/v1/evaluate/flags/EXAM_MODE", token(tt.evalClient), `{"context":{"sessionId":"new-one"}}`)
			md, _ := r["metadata"].(map[string]any)
			if status != http.StatusOK || r["value"] != false || r["reason"] != "STALE" || md["pinned"] != false || md["pin"] != tt.pin {
				t.Fatalf("a new session past a limit = %d %v, want the live value, STALE, pinned false, pin %s", status, r, tt.pin)
			}
		})
	}
}
