package server

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/store"
)

func TestGetStatus(t *testing.T) {
	h := newHarness(t)
	for _, token := range []string{adminToken, viewerToken} {
		res := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: token})
		if res.status != http.StatusOK || res.header.Get("ETag") != `"1"` {
			t.Fatalf("status = %d ETag %s, want 200 with ETag \"1\"", res.status, res.header.Get("ETag"))
		}
		st := res.json(t)
		profiles := st["profiles"].(map[string]any)
		if st["revision"] != float64(1) || st["mode"] != "demo" || st["profile"] != "primary" ||
			st["flags"].(map[string]any)["EXAM_MODE"] != false || len(st["catalog"].([]any)) != 10 ||
			len(profiles) != 3 || len(st["overrides"].(map[string]any)) != 0 {
			t.Fatalf("status = %v", st)
		}
		mastery := st["modules"].(map[string]any)["mastery"].(map[string]any)
		if mastery["version"] != "v1" || mastery["enabled"] != true || mastery["source"] != "profile" {
			t.Fatalf("resolved mastery = %v", mastery)
		}
	}
}

// mutation is a change request that the server applies.
type mutation struct {
	name   string
	setup  func(t *testing.T, h *harness)
	method string
	path   string
	body   map[string]any
	action string
	target string
	check  func(t *testing.T, status map[string]any)
}

func mutations() []mutation {
	module := func(st map[string]any, key string) map[string]any {
		return st["modules"].(map[string]any)[key].(map[string]any)
	}
	return []mutation{
		{
			name: "exam mode flag on", method: "POST", path: "/v1/admin/runtime/flags",
			body:   map[string]any{"flag": "EXAM_MODE", "value": true, "phrase": "ENABLE EXAM MODE", "reason": "exam at 10:00"},
			action: "set_flag", target: "EXAM_MODE",
			check: func(t *testing.T, st map[string]any) {
				if st["flags"].(map[string]any)["EXAM_MODE"] != true {
					t.Fatalf("flags = %v", st["flags"])
				}
			},
		},
		{
			name: "freeze updates on", method: "POST", path: "/v1/admin/runtime/flags",
			body:   map[string]any{"flag": "FREEZE_UPDATES", "value": true, "phrase": "ENABLE FREEZE UPDATES", "reason": "data migration"},
			action: "set_flag", target: "FREEZE_UPDATES",
			check: func(t *testing.T, st map[string]any) {
				if st["flags"].(map[string]any)["FREEZE_UPDATES"] != true {
					t.Fatalf("flags = %v", st["flags"])
				}
			},
		},
		{
			name: "admin freeze on", method: "POST", path: "/v1/admin/runtime/flags",
			body:   map[string]any{"flag": "ADMIN_FREEZE", "value": true, "phrase": "ENABLE ADMIN FREEZE", "reason": "change window closed"},
			action: "set_flag", target: "ADMIN_FREEZE",
			check: func(t *testing.T, st map[string]any) {
				if st["flags"].(map[string]any)["ADMIN_FREEZE"] != true {
					t.Fatalf("flags = %v", st["flags"])
				}
			},
		},
		{
			name: "freeze updates off", method: "POST", path: "/v1/admin/runtime/flags",
			setup: func(t *testing.T, h *harness) {
				h.admin(t, "POST", "/v1/admin/runtime/flags", map[string]any{"flag": "FREEZE_UPDATES", "value": true, "phrase": "ENABLE FREEZE UPDATES", "reason": "r"})
			},
			body:   map[string]any{"flag": "FREEZE_UPDATES", "value": false, "phrase": "DISABLE FREEZE UPDATES", "reason": "migration done"},
			action: "set_flag", target: "FREEZE_UPDATES",
			check: func(t *testing.T, st map[string]any) {
				if st["flags"].(map[string]any)["FREEZE_UPDATES"] != false {
					t.Fatalf("flags = %v", st["flags"])
				}
			},
		},
		{
			name: "exam mode route", method: "POST", path: "/v1/admin/system/exam-mode",
			body:   map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "exam at 10:00"},
			action: "set_flag", target: "EXAM_MODE",
			check: func(t *testing.T, st map[string]any) {
				if st["flags"].(map[string]any)["EXAM_MODE"] != true {
					t.Fatalf("flags = %v", st["flags"])
				}
			},
		},
		{
			name: "profile shadow", method: "POST", path: "/v1/admin/runtime/profile",
			body:   map[string]any{"profile_name": "shadow", "phrase": "SET PROFILE SHADOW", "reason": "try the new infra"},
			action: "set_profile", target: "runtime.profile",
			check: func(t *testing.T, st map[string]any) {
				if st["profile"] != "shadow" || module(st, "mastery")["version"] != "v0" || module(st, "neo4j")["version"] != "v1" {
					t.Fatalf("status = %v", st)
				}
			},
		},
		{
			name: "override version", method: "POST", path: "/v1/admin/runtime/override",
			body:   map[string]any{"module": "mastery", "version": "v0", "phrase": "OVERRIDE MODULE mastery TO v0", "reason": "v1 regression"},
			action: "set_override", target: "module:mastery",
			check: func(t *testing.T, st map[string]any) {
				if m := module(st, "mastery"); m["version"] != "v0" || m["source"] != "override" {
					t.Fatalf("mastery = %v", m)
				}
			},
		},
		{
			name: "override version and enabled", method: "POST", path: "/v1/admin/runtime/override",
			body:   map[string]any{"module": "search", "version": "v0", "is_enabled": false, "phrase": "OVERRIDE MODULE search TO v0", "reason": "index rebuild"},
			action: "set_override", target: "module:search",
			check: func(t *testing.T, st map[string]any) {
				if m := module(st, "search"); m["version"] != "v0" || m["enabled"] != false {
					t.Fatalf("search = %v", m)
				}
			},
		},
		{
			name: "disable module", method: "POST", path: "/v1/admin/runtime/override",
			body:   map[string]any{"module": "neo4j", "is_enabled": false, "phrase": "DISABLE MODULE neo4j", "reason": "graph incident"},
			action: "set_override", target: "module:neo4j",
			check: func(t *testing.T, st map[string]any) {
				if m := module(st, "neo4j"); m["enabled"] != false || m["version"] != "v1" {
					t.Fatalf("neo4j = %v", m)
				}
			},
		},
		{
			name: "enable module", method: "POST", path: "/v1/admin/runtime/override",
			body:   map[string]any{"module": "irt_shadow", "is_enabled": true, "phrase": "ENABLE MODULE irt_shadow", "reason": "shadow scoring"},
			action: "set_override", target: "module:irt_shadow",
			check: func(t *testing.T, st map[string]any) {
				if m := module(st, "irt_shadow"); m["enabled"] != true || m["source"] != "override" {
					t.Fatalf("irt_shadow = %v", m)
				}
			},
		},
		{
			name: "clear override", method: "DELETE", path: "/v1/admin/runtime/override/mastery",
			setup: func(t *testing.T, h *harness) {
				h.admin(t, "POST", "/v1/admin/runtime/override", map[string]any{"module": "mastery", "version": "v0", "phrase": "OVERRIDE MODULE mastery TO v0", "reason": "r"})
			},
			body:   map[string]any{"phrase": "CLEAR OVERRIDE mastery", "reason": "v1 fixed"},
			action: "clear_override", target: "module:mastery",
			check: func(t *testing.T, st map[string]any) {
				if m := module(st, "mastery"); m["version"] != "v1" || m["source"] != "profile" || len(st["overrides"].(map[string]any)) != 0 {
					t.Fatalf("status = %v", st)
				}
			},
		},
		{
			name: "register a new module", method: "PUT", path: "/v1/admin/runtime/modules/recommender",
			body: map[string]any{"kind": "algorithm", "versions": []string{"v0", "v1"},
				"defaults": map[string]string{"primary": "v1", "fallback": "v0", "shadow": "v0"},
				"phrase":   "REGISTER MODULE recommender", "reason": "new recommender"},
			action: "register_module", target: "module:recommender",
			check: func(t *testing.T, st map[string]any) {
				if m := module(st, "recommender"); m["version"] != "v1" || m["enabled"] != true {
					t.Fatalf("recommender = %v", m)
				}
				if len(st["catalog"].([]any)) != 11 {
					t.Fatalf("catalog = %v", st["catalog"])
				}
			},
		},
		{
			name: "add a version", method: "PUT", path: "/v1/admin/runtime/modules/mastery",
			body:   map[string]any{"versions": []string{"v2"}, "defaults": map[string]string{"shadow": "v2"}, "phrase": "REGISTER MODULE mastery", "reason": "mastery v2 in shadow"},
			action: "register_module", target: "module:mastery",
			check: func(t *testing.T, st map[string]any) {
				for _, m := range st["catalog"].([]any) {
					if m := m.(map[string]any); m["key"] == "mastery" && !reflect.DeepEqual(m["versions"], []any{"v0", "v1", "v2"}) {
						t.Fatalf("mastery versions = %v", m["versions"])
					}
				}
				shadow := st["profiles"].(map[string]any)["shadow"].(map[string]any)["modules"].(map[string]any)["mastery"].(map[string]any)
				if shadow["version"] != "v2" {
					t.Fatalf("shadow mastery = %v", shadow)
				}
			},
		},
		{
			name: "update a profile", method: "PUT", path: "/v1/admin/runtime/profiles/fallback",
			body: map[string]any{"config": map[string]any{"mastery": "v1", "neo4j": map[string]any{"enabled": true}, "search": map[string]any{"version": "v1", "enabled": false}},
				"phrase": "UPDATE PROFILE FALLBACK", "reason": "v1 proved itself"},
			action: "update_profile", target: "profile:fallback",
			check: func(t *testing.T, st map[string]any) {
				fb := st["profiles"].(map[string]any)["fallback"].(map[string]any)["modules"].(map[string]any)
				want := map[string]any{
					"mastery": map[string]any{"version": "v1", "enabled": true},
					"neo4j":   map[string]any{"version": "v0", "enabled": true},
					"search":  map[string]any{"version": "v1", "enabled": false},
				}
				for k, w := range want {
					if !reflect.DeepEqual(fb[k], w) {
						t.Fatalf("fallback %s = %v, want %v", k, fb[k], w)
					}
				}
			},
		},
	}
}

func TestMutations(t *testing.T) {
	for _, tt := range mutations() {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.setup != nil {
				tt.setup(t, h)
			}
			before := h.current(t).Number
			res := h.do(t, call{method: tt.method, path: tt.path, body: mustJSON(t, tt.body), token: adminToken,
				header: map[string]string{"X-Request-Id": "req-" + strings.ReplaceAll(tt.name, " ", "-")}})
			if res.status != http.StatusOK {
				t.Fatalf("%s %s = %d %s", tt.method, tt.path, res.status, res.body)
			}
			body := res.json(t)
			st := body["status"].(map[string]any)
			if st["revision"] != float64(before+1) || res.header.Get("ETag") != `"`+itoa(before+1)+`"` {
				t.Fatalf("revision %v with ETag %s, want %d", st["revision"], res.header.Get("ETag"), before+1)
			}
			tt.check(t, st)

			entry := h.audit(t)[0]
			if body["audit_seq"] != float64(entry.Seq) || entry.Outcome != store.OutcomeApplied ||
				entry.Action != tt.action || entry.Target != tt.target || entry.Actor != adminName ||
				entry.Role != "admin" || entry.Phrase != tt.body["phrase"] || entry.Reason != tt.body["reason"] ||
				entry.RequestID != res.header.Get(headerRequestID) || entry.RequestID != "req-"+strings.ReplaceAll(tt.name, " ", "-") ||
				entry.Revision != before+1 || len(entry.Before) == 0 || len(entry.After) == 0 {
				t.Fatalf("audit entry = %+v (response audit_seq %v)", entry, body["audit_seq"])
			}
			if strings.Contains(string(mustJSON(t, entry)), adminToken) {
				t.Fatal("the audit entry contains the token")
			}
		})
	}
}

// refusal is a change request the server refuses.
type refusal struct {
	name       string
	method     string
	path       string
	body       string
	token      string
	header     map[string]string
	breaksSpec bool
	status     int
	code       string
	// fields are error fields the answer must carry.
	fields map[string]any
}

func refusals() []refusal {
	return []refusal{
		{name: "wrong phrase", method: "POST", path: "/v1/admin/runtime/flags",
			body:   `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "ENABLE EXAM MODE"}},
		{name: "phrase in lower case", method: "POST", path: "/v1/admin/system/exam-mode",
			body:   `{"enabled":false,"phrase":"disable exam mode","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "DISABLE EXAM MODE"}},
		{name: "phrase for the other direction", method: "POST", path: "/v1/admin/runtime/flags",
			body:   `{"flag":"ADMIN_FREEZE","value":true,"phrase":"DISABLE ADMIN FREEZE","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "ENABLE ADMIN FREEZE"}},
		{name: "profile phrase", method: "POST", path: "/v1/admin/runtime/profile",
			body:   `{"profile_name":"fallback","phrase":"SET PROFILE fallback","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "SET PROFILE FALLBACK"}},
		{name: "override phrase", method: "POST", path: "/v1/admin/runtime/override",
			body:   `{"module":"mastery","version":"v0","is_enabled":true,"phrase":"ENABLE MODULE mastery","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "OVERRIDE MODULE mastery TO v0"}},
		{name: "clear override phrase", method: "DELETE", path: "/v1/admin/runtime/override/mastery",
			body:   `{"phrase":"CLEAR OVERRIDE","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "CLEAR OVERRIDE mastery"}},
		{name: "register phrase", method: "PUT", path: "/v1/admin/runtime/modules/mastery",
			body:   `{"versions":["v2"],"phrase":"REGISTER MODULE","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "REGISTER MODULE mastery"}},
		{name: "update profile phrase", method: "PUT", path: "/v1/admin/runtime/profiles/shadow",
			body:   `{"config":{"mastery":"v1"},"phrase":"UPDATE PROFILE shadow","reason":"r"}`,
			status: 400, code: "PHRASE_MISMATCH", fields: map[string]any{"expected_phrase": "UPDATE PROFILE SHADOW"}},
		{name: "missing reason", method: "POST", path: "/v1/admin/runtime/flags",
			body: `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE"}`, breaksSpec: true,
			status: 400, code: "REASON_REQUIRED"},
		{name: "blank reason", method: "POST", path: "/v1/admin/runtime/profile",
			body:   `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"   "}`,
			status: 400, code: "REASON_REQUIRED"},
		{name: "reason too long", method: "POST", path: "/v1/admin/runtime/profile",
			body:       `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"` + strings.Repeat("é", 1001) + `"}`,
			breaksSpec: true, status: 400, code: "REASON_REQUIRED", fields: map[string]any{"max_length": float64(1000)}},
		{name: "viewer", method: "POST", path: "/v1/admin/runtime/flags", token: viewerToken,
			body:   `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`,
			status: 403, code: "FORBIDDEN"},
		{name: "viewer with a bad body", method: "PUT", path: "/v1/admin/runtime/modules/x", token: viewerToken,
			body: `{"versions":`, breaksSpec: true, status: 403, code: "FORBIDDEN"},
		{name: "unknown flag", method: "POST", path: "/v1/admin/runtime/flags",
			body: `{"flag":"DEBUG_MODE","value":true,"phrase":"ENABLE DEBUG MODE","reason":"r"}`, breaksSpec: true,
			status: 400, code: "UNKNOWN_FLAG", fields: map[string]any{"allowed_flags": []any{"EXAM_MODE", "FREEZE_UPDATES", "ADMIN_FREEZE"}}},
		{name: "flag without value", method: "POST", path: "/v1/admin/runtime/flags",
			body: `{"flag":"EXAM_MODE","phrase":"ENABLE EXAM MODE","reason":"r"}`, breaksSpec: true,
			status: 400, code: "INVALID_REQUEST", fields: map[string]any{"field": "value"}},
		{name: "unknown profile", method: "POST", path: "/v1/admin/runtime/profile",
			body:   `{"profile_name":"turbo","phrase":"SET PROFILE TURBO","reason":"r"}`,
			status: 400, code: "UNKNOWN_PROFILE", fields: map[string]any{"allowed_profiles": []any{"fallback", "primary", "shadow"}}},
		{name: "unknown module", method: "POST", path: "/v1/admin/runtime/override",
			body:   `{"module":"warp","version":"v1","phrase":"OVERRIDE MODULE warp TO v1","reason":"r"}`,
			status: 400, code: "UNKNOWN_MODULE", fields: map[string]any{"module": "warp"}},
		{name: "unknown version", method: "POST", path: "/v1/admin/runtime/override",
			body:   `{"module":"mastery","version":"v9","phrase":"OVERRIDE MODULE mastery TO v9","reason":"r"}`,
			status: 400, code: "UNKNOWN_VERSION", fields: map[string]any{"module": "mastery", "allowed_versions": []any{"v0", "v1"}}},
		{name: "override of nothing", method: "POST", path: "/v1/admin/runtime/override",
			body:   `{"module":"mastery","phrase":"OVERRIDE MODULE mastery","reason":"r"}`,
			status: 400, code: "INVALID_REQUEST"},
		{name: "clear a missing override", method: "DELETE", path: "/v1/admin/runtime/override/mastery",
			body:   `{"phrase":"CLEAR OVERRIDE mastery","reason":"r"}`,
			status: 404, code: "NOT_FOUND", fields: map[string]any{"module": "mastery"}},
		{name: "profile of an unknown module", method: "PUT", path: "/v1/admin/runtime/profiles/primary",
			body:   `{"config":{"warp":"v1"},"phrase":"UPDATE PROFILE PRIMARY","reason":"r"}`,
			status: 400, code: "UNKNOWN_MODULE"},
		{name: "profile at an unknown version", method: "PUT", path: "/v1/admin/runtime/profiles/primary",
			body:   `{"config":{"mastery":{"version":"v7"}},"phrase":"UPDATE PROFILE PRIMARY","reason":"r"}`,
			status: 400, code: "UNKNOWN_VERSION"},
		{name: "update an unknown profile", method: "PUT", path: "/v1/admin/runtime/profiles/turbo",
			body:   `{"config":{"mastery":"v1"},"phrase":"UPDATE PROFILE TURBO","reason":"r"}`,
			status: 400, code: "UNKNOWN_PROFILE"},
		{name: "profile entry with an unknown field", method: "PUT", path: "/v1/admin/runtime/profiles/primary",
			body:       `{"config":{"mastery":{"versio":"v1"}},"phrase":"UPDATE PROFILE PRIMARY","reason":"r"}`,
			breaksSpec: true, status: 400, code: "INVALID_REQUEST"},
		{name: "new module without every default", method: "PUT", path: "/v1/admin/runtime/modules/recommender",
			body:   `{"kind":"algorithm","versions":["v0"],"defaults":{"primary":"v0"},"phrase":"REGISTER MODULE recommender","reason":"r"}`,
			status: 400, code: "INVALID_REQUEST", fields: map[string]any{"missing_profiles": []any{"fallback", "shadow"}}},
		{name: "module kind change", method: "PUT", path: "/v1/admin/runtime/modules/neo4j",
			body:   `{"kind":"algorithm","versions":["v2"],"phrase":"REGISTER MODULE neo4j","reason":"r"}`,
			status: 400, code: "INVALID_REQUEST"},
		{name: "module key not allowed", method: "PUT", path: "/v1/admin/runtime/modules/Bad-Key",
			body:   `{"kind":"infra","versions":["v0"],"defaults":{"primary":"v0","fallback":"v0","shadow":"v0"},"phrase":"REGISTER MODULE Bad-Key","reason":"r"}`,
			status: 400, code: "INVALID_REQUEST"},
		{name: "malformed JSON", method: "POST", path: "/v1/admin/runtime/profile",
			body: `{"profile_name":"fallback",`, breaksSpec: true, status: 400, code: "INVALID_REQUEST"},
		{name: "unknown field", method: "POST", path: "/v1/admin/runtime/profile",
			body:       `{"profile":"fallback","phrase":"SET PROFILE FALLBACK","reason":"r"}`,
			breaksSpec: true, status: 400, code: "INVALID_REQUEST", fields: map[string]any{"field": "profile"}},
		{name: "wrong type", method: "POST", path: "/v1/admin/runtime/flags",
			body:       `{"flag":"EXAM_MODE","value":"yes","phrase":"ENABLE EXAM MODE","reason":"r"}`,
			breaksSpec: true, status: 400, code: "INVALID_REQUEST", fields: map[string]any{"field": "value"}},
		{name: "trailing data", method: "POST", path: "/v1/admin/runtime/profile",
			body:   `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"r"}{}`,
			status: 400, code: "INVALID_REQUEST"},
		{name: "oversized body", method: "POST", path: "/v1/admin/runtime/profile",
			body:       `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"` + strings.Repeat("r", 5000) + `"}`,
			breaksSpec: true, status: 413, code: "BODY_TOO_LARGE", fields: map[string]any{"max_body_bytes": float64(4096)}},
		{name: "text body", method: "POST", path: "/v1/admin/runtime/flags",
			header:     map[string]string{"Content-Type": "text/plain"},
			body:       `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`,
			breaksSpec: true, status: 415, code: "UNSUPPORTED_MEDIA_TYPE", fields: map[string]any{"field": "Content-Type"}},
		{name: "form body", method: "POST", path: "/system-mode/toggle",
			header:     map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body:       `{"target_mode":"production","phrase":"SWITCH TO PRODUCTION MODE","reason":"r"}`,
			breaksSpec: true, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "body without a content type", method: "PUT", path: "/v1/admin/runtime/profiles/shadow",
			header:     map[string]string{"Content-Type": ""},
			body:       `{"config":{"mastery":"v1"},"phrase":"UPDATE PROFILE SHADOW","reason":"r"}`,
			breaksSpec: true, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "JSON in another charset", method: "POST", path: "/v1/admin/system/exam-mode",
			header: map[string]string{"Content-Type": "application/json; charset=iso-8859-1"},
			body:   `{"enabled":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`,
			status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
		{name: "If-Match not a revision", method: "POST", path: "/v1/admin/runtime/profile",
			header: map[string]string{"If-Match": `"abc"`},
			body:   `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"r"}`,
			status: 400, code: "INVALID_REQUEST", fields: map[string]any{"field": "If-Match"}},
		{name: "stale If-Match", method: "POST", path: "/v1/admin/runtime/profile",
			header: map[string]string{"If-Match": `"7"`},
			body:   `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"r"}`,
			status: 412, code: "REVISION_CONFLICT", fields: map[string]any{"current_revision": float64(1)}},
	}
}

func TestRefusals(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.MaxBodyBytes = 4096 })
	for _, tt := range refusals() {
		t.Run(tt.name, func(t *testing.T) {
			h.clock.pause()
			token := tt.token
			if token == "" {
				token = adminToken
			}
			before := h.audit(t)
			res := h.do(t, call{method: tt.method, path: tt.path, body: tt.body, token: token, header: tt.header, breaksSpec: tt.breaksSpec})
			if res.status != tt.status || res.errorCode(t) != tt.code {
				t.Fatalf("%s %s = %d %s, want %d %s", tt.method, tt.path, res.status, res.body, tt.status, tt.code)
			}
			e := res.json(t)["error"].(map[string]any)
			if e["message"] == "" {
				t.Fatalf("error without a message: %s", res.body)
			}
			for k, want := range tt.fields {
				if !reflect.DeepEqual(e[k], want) {
					t.Fatalf("error field %s = %v, want %v (in %s)", k, e[k], want, res.body)
				}
			}
			if cur := h.current(t); cur.Number != 1 {
				t.Fatalf("a refused change made revision %d", cur.Number)
			}
			after := h.audit(t)
			if len(after) != len(before)+1 {
				t.Fatalf("audit grew by %d entries, want 1", len(after)-len(before))
			}
			entry := after[0]
			role, name := "admin", adminName
			if token == viewerToken {
				role, name = "viewer", viewerName
			}
			if entry.Outcome != store.OutcomeRejected || !strings.HasPrefix(entry.Why, tt.code+": ") ||
				entry.Role != role || entry.Actor != name || entry.RequestID != res.header.Get(headerRequestID) ||
				entry.Action == "" {
				t.Fatalf("audit entry = %+v, want a rejected %s attempt by %s", entry, tt.code, role)
			}
		})
	}
	// After every refusal the server still serves and applies changes.
	h.admin(t, "POST", "/v1/admin/runtime/profile", map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "r"})
}

func TestRefusedAttemptsNameTheirTarget(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		path, body     string
		action, target string
	}{
		{"/v1/admin/runtime/flags", `{"flag":"FREEZE_UPDATES","value":true,"phrase":"no","reason":"r"}`, "set_flag", "FREEZE_UPDATES"},
		{"/v1/admin/runtime/override", `{"module":"neo4j","is_enabled":false,"phrase":"no","reason":"r"}`, "set_override", "module:neo4j"},
		{"/v1/admin/runtime/profile", `{"profile_name":"shadow","phrase":"no","reason":"r"}`, "set_profile", "runtime.profile"},
		{"/v1/admin/system/exam-mode", `{"enabled":true,"phrase":"no","reason":"r"}`, "set_flag", "EXAM_MODE"},
	}
	for _, tt := range tests {
		res := h.do(t, call{method: "POST", path: tt.path, body: tt.body, token: adminToken})
		if res.status != http.StatusBadRequest {
			t.Fatalf("POST %s = %d %s", tt.path, res.status, res.body)
		}
		if e := h.audit(t)[0]; e.Action != tt.action || e.Target != tt.target || e.Phrase != "no" || e.Reason != "r" {
			t.Fatalf("audit entry for %s = %+v, want %s on %s", tt.path, e, tt.action, tt.target)
		}
	}
}

func TestUnauthorized(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name   string
		header string
	}{
		{"no token", ""},
		{"wrong token", "Bearer not-a-token"},
		{"token prefix", "Bearer " + adminToken[:len(adminToken)-1]},
		{"basic scheme", "Basic " + adminToken},
		{"empty bearer", "Bearer "},
	}
	routes := []struct{ method, path, body string }{
		{"GET", "/v1/admin/runtime/status", ""},
		{"POST", "/v1/admin/runtime/flags", `{"flag":"EXAM_MODE","value":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`},
		{"DELETE", "/v1/admin/runtime/override/mastery", `{"phrase":"CLEAR OVERRIDE mastery","reason":"r"}`},
		{"GET", "/v1/admin/audit", ""},
		{"GET", "/v1/admin/audit/verify", ""},
	}
	for _, tt := range tests {
		for _, r := range routes {
			t.Run(tt.name+" "+r.method+" "+r.path, func(t *testing.T) {
				h.clock.pause()
				header := map[string]string{}
				if tt.header != "" {
					header["Authorization"] = tt.header
				}
				res := h.do(t, call{method: r.method, path: r.path, body: r.body, header: header})
				if res.status != http.StatusUnauthorized || res.errorCode(t) != "UNAUTHORIZED" ||
					!strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
					t.Fatalf("%d %s (WWW-Authenticate %q), want 401 UNAUTHORIZED with a Bearer challenge",
						res.status, res.body, res.header.Get("WWW-Authenticate"))
				}
				if !strings.Contains(h.logs.String(), "request_id="+res.header.Get(headerRequestID)) {
					t.Fatal("the refused credentials were not logged")
				}
			})
		}
	}
	if n := len(h.audit(t)); n != 0 {
		t.Fatalf("401s wrote %d audit entries, want none", n)
	}
	if strings.Contains(h.logs.String(), adminToken[:len(adminToken)-1]) {
		t.Fatal("the log contains a presented token")
	}
}

func TestViewerReads(t *testing.T) {
	h := newHarness(t)
	for _, path := range []string{"/v1/admin/runtime/status", "/v1/admin/audit", "/v1/admin/audit/verify"} {
		if res := h.do(t, call{method: "GET", path: path, token: viewerToken}); res.status != http.StatusOK {
			t.Fatalf("viewer GET %s = %d %s", path, res.status, res.body)
		}
	}
}

func TestIfMatch(t *testing.T) {
	h := newHarness(t)
	toggle := func(t *testing.T, on bool, ifMatch string) response {
		t.Helper()
		phrase := "DISABLE FREEZE UPDATES"
		if on {
			phrase = "ENABLE FREEZE UPDATES"
		}
		return h.do(t, call{method: "POST", path: "/v1/admin/runtime/flags", token: adminToken,
			header: map[string]string{"If-Match": ifMatch},
			body:   mustJSON(t, map[string]any{"flag": "FREEZE_UPDATES", "value": on, "phrase": phrase, "reason": "r"})})
	}
	for i, form := range []string{`"1"`, `2`, `W/"3"`, `*`} {
		res := toggle(t, i%2 == 0, form)
		if res.status != http.StatusOK || res.header.Get("ETag") != `"`+itoa(int64(i+2))+`"` {
			t.Fatalf("If-Match %s = %d %s (ETag %s)", form, res.status, res.body, res.header.Get("ETag"))
		}
	}
	stale := toggle(t, true, `"4"`)
	if stale.status != http.StatusPreconditionFailed || stale.errorCode(t) != "REVISION_CONFLICT" {
		t.Fatalf("stale If-Match = %d %s, want 412 REVISION_CONFLICT", stale.status, stale.body)
	}
	if cur := h.current(t); cur.Number != 5 || cur.System.FreezeUpdates {
		t.Fatalf("after the stale change: revision %d freeze %v, want revision 5 with freeze off", cur.Number, cur.System.FreezeUpdates)
	}
	if e := h.audit(t)[0]; e.Outcome != store.OutcomeRejected || !strings.HasPrefix(e.Why, "REVISION_CONFLICT") {
		t.Fatalf("stale attempt audit entry = %+v", e)
	}
	status := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: viewerToken})
	if status.header.Get("ETag") != `"5"` {
		t.Fatalf("status ETag = %s, want \"5\"", status.header.Get("ETag"))
	}
	if fresh := toggle(t, true, status.header.Get("ETag")); fresh.status != http.StatusOK {
		t.Fatalf("If-Match with the status ETag = %d %s", fresh.status, fresh.body)
	}
}

func TestAdminFreeze(t *testing.T) {
	h := newHarness(t)
	h.admin(t, "POST", "/v1/admin/runtime/flags", map[string]any{"flag": "ADMIN_FREEZE", "value": true, "phrase": "ENABLE ADMIN FREEZE", "reason": "quarter close"})
	frozen := []call{
		{method: "POST", path: "/v1/admin/system/exam-mode", body: `{"enabled":true,"phrase":"ENABLE EXAM MODE","reason":"r"}`},
		{method: "POST", path: "/v1/admin/runtime/profile", body: `{"profile_name":"fallback","phrase":"SET PROFILE FALLBACK","reason":"r"}`},
		{method: "PUT", path: "/v1/admin/runtime/modules/mastery", body: `{"versions":["v2"],"phrase":"REGISTER MODULE mastery","reason":"r"}`},
	}
	for _, c := range frozen {
		c.token = adminToken
		res := h.do(t, c)
		if res.status != http.StatusLocked || res.errorCode(t) != "ADMIN_FREEZE_ACTIVE" {
			t.Fatalf("%s %s while frozen = %d %s, want 423 ADMIN_FREEZE_ACTIVE", c.method, c.path, res.status, res.body)
		}
		if e := h.audit(t)[0]; e.Outcome != store.OutcomeRejected || !strings.HasPrefix(e.Why, "ADMIN_FREEZE_ACTIVE") {
			t.Fatalf("frozen attempt audit entry = %+v", e)
		}
	}
	if cur := h.current(t); cur.Number != 2 {
		t.Fatalf("changes were applied while frozen: revision %d", cur.Number)
	}
	h.admin(t, "POST", "/v1/admin/runtime/flags", map[string]any{"flag": "ADMIN_FREEZE", "value": false, "phrase": "DISABLE ADMIN FREEZE", "reason": "quarter closed"})
	got := h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "r"})
	if got["status"].(map[string]any)["flags"].(map[string]any)["EXAM_MODE"] != true {
		t.Fatalf("after lifting the freeze: %v", got)
	}
}

func TestEveryAttemptIsAudited(t *testing.T) {
	h := newHarness(t, func(c *testConfig) { c.MaxBodyBytes = 4096 })
	var want []string
	for _, r := range refusals() {
		h.clock.pause()
		token := r.token
		if token == "" {
			token = adminToken
		}
		res := h.do(t, call{method: r.method, path: r.path, body: r.body, token: token, header: r.header, breaksSpec: r.breaksSpec})
		if res.status < 400 {
			t.Fatalf("%s: %d %s", r.name, res.status, res.body)
		}
		want = append(want, res.header.Get(headerRequestID)+" rejected")
	}
	for _, m := range mutations() {
		if m.setup != nil || m.name == "admin freeze on" {
			continue
		}
		res := h.do(t, call{method: m.method, path: m.path, body: mustJSON(t, m.body), token: adminToken})
		if res.status != http.StatusOK {
			t.Fatalf("%s: %d %s", m.name, res.status, res.body)
		}
		want = append(want, res.header.Get(headerRequestID)+" applied")
	}
	entries := h.audit(t)
	var got []string
	for _, e := range slices.Backward(entries) {
		got = append(got, e.RequestID+" "+e.Outcome)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log =\n%v\nwant\n%v", got, want)
	}
	res := h.do(t, call{method: "GET", path: "/v1/admin/audit/verify", token: viewerToken})
	var v store.Verification
	if err := json.Unmarshal(res.body, &v); err != nil || !v.OK || v.Entries != int64(len(want)) {
		t.Fatalf("verify = %s, want ok with %d entries", res.body, len(want))
	}
}
