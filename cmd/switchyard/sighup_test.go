//go:build unix

package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/store/storetest"
)

// auditActor returns the actor of the newest audit entry.
func auditActor(t *testing.T, s *process) string {
	t.Helper()
	var page struct {
		Entries []struct {
			Actor string `json:"actor"`
		} `json:"entries"`
	}
	getJSON(t, s, "/v1/admin/audit?limit=1", &page)
	if len(page.Entries) != 1 {
		t.Fatalf("audit page = %+v, want one entry", page)
	}
	return page.Entries[0].Actor
}

// waitForLog waits until logs holds want: a SIGHUP is handled on the
// server's own goroutine.
func waitForLog(t *testing.T, logs *storetest.LogBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", want, logs.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// The tokens file is re-read on SIGHUP: the audit log names the new
// operators, a removed token is refused at once, and a bad file keeps
// the tokens in force.
func TestTokensFileReloadsOnSIGHUP(t *testing.T) {
	aliceSecret, bobSecret := "alice-secret-0123456789abcdef0123", "bob-secret-0123456789abcdef012345"
	path := writeTokensFile(t, "alice:admin:"+aliceSecret+"\n")
	logs := &storetest.LogBuffer{}
	s := startServeLogging(t, map[string]string{"SWITCHYARD_TOKENS_FILE": path}, logs)
	defer func() {
		if err := s.stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()
	if s.token != "" {
		t.Fatal("demo mode generated a token although a tokens file is configured")
	}
	change := func(secret string, on bool) int {
		phrase := "DISABLE EXAM MODE"
		if on {
			phrase = "ENABLE EXAM MODE"
		}
		code, _ := post(t, s, "/v1/admin/system/exam-mode", secret,
			`{"enabled":`+strconv.FormatBool(on)+`,"phrase":"`+phrase+`","reason":"token reload test"}`)
		return code
	}
	if code := change(aliceSecret, true); code != http.StatusOK {
		t.Fatalf("alice's change = %d", code)
	}
	s.token = aliceSecret
	if actor := auditActor(t, s); actor != "alice" {
		t.Fatalf("audit actor = %q, want alice", actor)
	}

	// Bob replaces alice; the file holds only his secret's digest.
	if err := os.WriteFile(path, []byte("bob:admin:sha256:"+sha256Hex(bobSecret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, logs, `msg="tokens reloaded"`)
	if code := change(aliceSecret, false); code != http.StatusUnauthorized {
		t.Fatalf("alice's change after her token was removed = %d, want 401", code)
	}
	if code := change(bobSecret, false); code != http.StatusOK {
		t.Fatalf("bob's change = %d", code)
	}
	s.token = bobSecret
	if actor := auditActor(t, s); actor != "bob" {
		t.Fatalf("audit actor = %q, want bob", actor)
	}

	// A file that does not parse changes nothing.
	if err := os.WriteFile(path, []byte("carol:root:"+aliceSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, logs, `msg="SIGHUP: keeping the tokens in force"`)
	if !strings.Contains(logs.String(), `line 1: token \"carol\": role \"root\"`) || strings.Contains(logs.String(), aliceSecret) {
		t.Fatalf("the refused reload logged %q, want the line and token named, no secret", logs.String())
	}
	if code := change(bobSecret, true); code != http.StatusOK {
		t.Fatalf("bob's change after a bad file = %d, want 200: the tokens in force stay", code)
	}
}
