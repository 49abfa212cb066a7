package server

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// withAuth is a harness whose server checks tokens with auth, which the
// test keeps to replace them.
func withAuth(t *testing.T, auth *Authenticator) *harness {
	t.Helper()
	h := newStore(t)
	logger := slog.New(slog.NewTextHandler(h.logs, nil))
	h.handler = newEngine(logger, control.New(logger, control.Config{Mode: "demo", Now: h.clock.now}, h.store), Config{Auth: auth})
	return h
}

// The audit log names the operator of every token, whether the secret or
// only its digest is configured.
func TestTokensNameTheOperator(t *testing.T) {
	digested := sha256.Sum256([]byte("bob-secret"))
	auth := NewAuthenticator([]Token{
		{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleAdmin}, Secret: "alice-secret"},
		{Operator: switchyard.Operator{Name: "bob", Role: switchyard.RoleAdmin}, SecretSHA256: &digested},
	})
	tests := []struct {
		name, secret, actor string
	}{
		{"secret configured", "alice-secret", "alice"},
		{"digest configured", "bob-secret", "bob"},
	}
	h := withAuth(t, auth)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.do(t, call{method: "POST", path: "/v1/admin/system/exam-mode", token: tt.secret,
				body: mustJSON(t, map[string]any{"enabled": i%2 == 0, "phrase": togglePhrase(i%2 == 0), "reason": "token test"})})
			if res.status != http.StatusOK {
				t.Fatalf("change = %d %s", res.status, res.body)
			}
			if entry := h.audit(t)[0]; entry.Actor != tt.actor || entry.Role != "admin" {
				t.Fatalf("audit actor %q role %q, want %q admin", entry.Actor, entry.Role, tt.actor)
			}
		})
	}
	if res := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: hex.EncodeToString(digested[:])}); res.status != http.StatusUnauthorized {
		t.Fatalf("the digest sent as a token = %d, want 401: the digest is not the secret", res.status)
	}
}

// togglePhrase is the exam mode switch's phrase.
func togglePhrase(on bool) string {
	if on {
		return "ENABLE EXAM MODE"
	}
	return "DISABLE EXAM MODE"
}

// Replacing the tokens refuses a removed one and accepts an added one at
// once, and no request with a token kept across the swap is refused while
// the swaps happen.
func TestReplacingTokensRefusesNoKeptToken(t *testing.T) {
	kept := Token{Operator: switchyard.Operator{Name: "kept", Role: switchyard.RoleViewer}, Secret: "kept-secret"}
	before := []Token{kept, {Operator: switchyard.Operator{Name: "leaver", Role: switchyard.RoleViewer}, Secret: "old-secret"}}
	after := []Token{{Operator: switchyard.Operator{Name: "joiner", Role: switchyard.RoleAdmin}, Secret: "new-secret"}, kept}
	auth := NewAuthenticator(before)
	h := withAuth(t, auth)

	var wg sync.WaitGroup
	done := make(chan struct{})
	refused := make(chan int, 1)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				res, err := h.send(call{method: "GET", path: "/v1/admin/runtime/status", token: kept.Secret})
				if err != nil || res.status != http.StatusOK {
					select {
					case refused <- res.status:
					default:
					}
					return
				}
			}
		})
	}
	for i := range 1000 {
		if i%2 == 0 {
			auth.Replace(after)
		} else {
			auth.Replace(before)
		}
	}
	close(done)
	wg.Wait()
	select {
	case status := <-refused:
		t.Fatalf("a request with a token kept across the swaps answered %d", status)
	default:
	}

	auth.Replace(after)
	for _, tt := range []struct {
		secret string
		want   int
	}{{"old-secret", http.StatusUnauthorized}, {"new-secret", http.StatusOK}, {"kept-secret", http.StatusOK}} {
		if res := h.do(t, call{method: "GET", path: "/v1/admin/runtime/status", token: tt.secret}); res.status != tt.want {
			t.Fatalf("%s after the swap = %d, want %d", tt.secret, res.status, tt.want)
		}
	}
}
