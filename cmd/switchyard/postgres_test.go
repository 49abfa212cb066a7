package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/store/rediscache"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// testDatabase returns the test database's URL pointed at a fresh schema
// that is dropped when the test ends.
func testDatabase(t testing.TB) string {
	t.Helper()
	u, _ := storetest.PostgresSchema(t)
	return u
}

// The secrets of productionEnv's tokens, as long as production requires.
const (
	testAdminSecret  = "test-admin-secret-0123456789abcdef"
	testViewerSecret = "test-viewer-secret-0123456789abcdef"
)

// productionEnv is the environment of a production replica that meets
// every requirement: a fresh schema, Redis under a key prefix of its own,
// an admin and a viewer token and a state directory. Tests change what
// they are about.
func productionEnv(t testing.TB) map[string]string {
	t.Helper()
	var id [6]byte
	_, _ = rand.Read(id[:])
	redisURL := storetest.ServiceURL(t, "SWITCHYARD_TEST_REDIS_URL")
	prefix := "switchyard_cmd_test_" + hex.EncodeToString(id[:]) + ":"
	t.Cleanup(func() { dropRedisPrefix(t, redisURL, prefix) })
	return map[string]string{
		"SWITCHYARD_DATABASE_URL": testDatabase(t),
		"SWITCHYARD_REDIS_URL":    redisURL,
		"SWITCHYARD_REDIS_PREFIX": prefix,
		"SWITCHYARD_TOKENS":       "admin:" + testAdminSecret + ",viewer:" + testViewerSecret,
		"SWITCHYARD_STATE_DIR":    t.TempDir(),
	}
}

// dropRedisPrefix deletes every key under prefix, so a test's cached
// sessions and revisions do not outlive it in a shared Redis (where they
// would slow every later scan).
func dropRedisPrefix(t testing.TB, url, prefix string) {
	rdb, err := rediscache.NewClient(url)
	if err != nil {
		t.Errorf("clean up Redis: %v", err)
		return
	}
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == 1000 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				t.Errorf("clean up Redis %s*: %v", prefix, err)
				return
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("clean up Redis %s*: %v", prefix, err)
		return
	}
	if len(keys) > 0 {
		if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
			t.Errorf("clean up Redis %s*: %v", prefix, err)
		}
	}
}

func runCommand(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, io.Discard)
	return out.String(), err
}

// The README runbook runs against Postgres, the state survives a restart,
// and the audit chain verifies from the command line.
func TestRunbookInProductionMode(t *testing.T) {
	env := productionEnv(t)
	if out, err := runCommand(t, env, "migrate", "status"); err != nil || !strings.Contains(out, "pending") {
		t.Fatalf("migrate status before up = %q, %v; want pending migrations", out, err)
	}
	if out, err := runCommand(t, env, "migrate", "up"); err != nil || !strings.Contains(out, "applied") {
		t.Fatalf("migrate up = %q, %v", out, err)
	}
	if out, err := runCommand(t, env, "migrate", "up"); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("second migrate up = %q, %v; want a no-op", out, err)
	}

	s := startServe(t, env)
	s.token = testAdminSecret
	runRunbook(t, s)
	if err := s.stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}

	s = startServe(t, env, "--migrate=false")
	s.token = testViewerSecret
	var st status
	getJSON(t, s, "/v1/admin/runtime/status", &st)
	if st.Revision != 7 || st.Profile != "primary" {
		t.Fatalf("after restart: %+v, want revision 7 on primary", st)
	}
	var v verification
	getJSON(t, s, "/v1/admin/audit/verify", &v)
	if !v.OK || v.Entries != 6 {
		t.Fatalf("verify after restart = %+v, want ok with 6 entries", v)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	out, err := runCommand(t, env, "audit", "verify")
	if err != nil || !strings.Contains(out, "audit chain intact: 6 entries") {
		t.Fatalf("audit verify = %q, %v", out, err)
	}
}

// Two replicas sharing Postgres and Redis: a change made through one is
// served by the other through invalidation, long before any TTL expires.
func TestReplicasConverge(t *testing.T) {
	env := productionEnv(t)
	// Only invalidation can deliver the change within the test.
	env["SWITCHYARD_CACHE_TTL"] = "10m"
	env["SWITCHYARD_REDIS_TTL"] = "10m"
	a := startServe(t, env)
	defer a.stop()
	b2 := startServe(t, env, "--migrate=false")
	defer b2.stop()
	a.token, b2.token = testAdminSecret, testAdminSecret
	var st status
	getJSON(t, b2, "/v1/admin/runtime/status", &st)
	if st.Revision != 1 {
		t.Fatalf("replica B starts at revision %d, want 1", st.Revision)
	}

	req, _ := http.NewRequest(http.MethodPost, a.url+"/v1/admin/system/exam-mode", strings.NewReader(
		`{"enabled": true, "phrase": "ENABLE EXAM MODE", "reason": "replica test"}`))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("exam mode on through replica A: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		getJSON(t, b2, "/v1/admin/runtime/status", &st)
		if st.Revision == 2 && st.Flags["EXAM_MODE"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica B still serves revision %d 10s after the change", st.Revision)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("change made through replica A served by replica B after %v", time.Since(start))
}
