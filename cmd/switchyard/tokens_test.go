package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/server"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// sha256Hex is the digest a tokens file holds for secret.
func sha256Hex(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// digestOf is sha256Hex as the parsed token holds it.
func digestOf(secret string) *[sha256.Size]byte {
	sum := sha256.Sum256([]byte(secret))
	return &sum
}

func named(name string, role switchyard.Role, secret string) server.Token {
	return server.Token{Operator: switchyard.Operator{Name: name, Role: role}, Secret: secret}
}

// SWITCHYARD_TOKENS takes name:role:secret entries and, as before
// operators had names, role:secret entries named by role and digest.
func TestParseTokens(t *testing.T) {
	tests := []struct {
		in      string
		want    []server.Token
		wantErr string
	}{
		{in: ""},
		{in: "   "},
		{in: "admin:s3cret", want: []server.Token{named("admin:"+sha256Hex("s3cret")[:6], switchyard.RoleAdmin, "s3cret")}},
		{in: " admin : a1 , viewer:v1 ", want: []server.Token{
			named("admin:"+sha256Hex("a1")[:6], switchyard.RoleAdmin, "a1"),
			named("viewer:"+sha256Hex("v1")[:6], switchyard.RoleViewer, "v1")}},
		{in: "admin:with:colon", want: []server.Token{named("admin:"+sha256Hex("with:colon")[:6], switchyard.RoleAdmin, "with:colon")}},
		{in: "alice:admin:s3cret, bob:viewer:with:colon", want: []server.Token{
			named("alice", switchyard.RoleAdmin, "s3cret"), named("bob", switchyard.RoleViewer, "with:colon")}},
		{in: "alice:admin:sha256:" + sha256Hex("s3cret"), want: []server.Token{
			{Operator: switchyard.Operator{Name: "alice", Role: switchyard.RoleAdmin}, SecretSHA256: digestOf("s3cret")}}},
		{in: "admin", wantErr: "entry 1: write name:role:secret"},
		{in: "admin:a,,viewer:v", wantErr: "entry 2 is empty"},
		{in: "root:x", wantErr: "entry 1: write name:role:secret"},
		{in: "alice:root:x", wantErr: `entry 1: token "alice": role "root" is not "admin", "viewer" or "client"`},
		{in: ":admin:x", wantErr: `entry 1: token "": a name is 1 to 64 letters`},
		{in: "al ice:admin:x", wantErr: `entry 1: token "al ice": a name is 1 to 64 letters`},
		{in: "viewer:", wantErr: "entry 1: the anonymous viewer token: the secret is empty"},
		{in: "alice:admin:sha256:abc", wantErr: `entry 1: token "alice": sha256: must be followed by the secret's SHA-256 in 64 hex digits`},
		{in: "admin:dup-secret,viewer:dup-secret", wantErr: "entry 2: token \"viewer:" + sha256Hex("dup-secret")[:6] + "\": the same secret as token"},
		{in: "alice:admin:dup-secret,bob:viewer:sha256:" + sha256Hex("dup-secret"), wantErr: `entry 2: token "bob": the same secret as token "alice"`},
		{in: "alice:admin:a-secret,alice:viewer:b-secret", wantErr: `entry 2: token "alice": the name is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTokens(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTokens(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "-secret") {
					t.Fatalf("the error %q shows a secret", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseTokens(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// writeTokensFile writes content to a tokens file in a fresh directory.
func writeTokensFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A tokens file holds one name:role:secret a line, with comments and
// blank lines; an error names the line and the token, never the secret.
func TestReadTokensFile(t *testing.T) {
	tests := []struct {
		name, content string
		want          []server.Token
		wantErr       string
	}{
		{name: "comments and blank lines", content: "# operators\n\nalice:admin:alice-secret\n  # bob keeps only a digest here\nbob:viewer:sha256:" + sha256Hex("bob-secret") + "\n",
			want: []server.Token{named("alice", switchyard.RoleAdmin, "alice-secret"),
				{Operator: switchyard.Operator{Name: "bob", Role: switchyard.RoleViewer}, SecretSHA256: digestOf("bob-secret")}}},
		{name: "empty", content: "# nobody yet\n"},
		{name: "anonymous form", content: "alice:admin:alice-secret\nadmin:bob-secret\n", wantErr: "line 2: write name:role:secret"},
		{name: "bad role", content: "\n# x\ncarol:root:carol-secret\n", wantErr: `line 3: token "carol": role "root" is not`},
		{name: "duplicate name", content: "alice:admin:alice-secret\nalice:viewer:other-secret\n", wantErr: `line 2: token "alice": the name is listed twice`},
		{name: "duplicate secret", content: "alice:admin:alice-secret\nbob:viewer:alice-secret\n", wantErr: `line 2: token "bob": the same secret as token "alice"`},
		{name: "too large", content: strings.Repeat("#", maxTokensFileBytes+1), wantErr: "is over 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTokensFile(t, tt.content)
			got, err := readTokensFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("readTokensFile = %v, want an error naming the file and %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "-secret") {
					t.Fatalf("the error %q shows a secret", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("readTokensFile = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := readTokensFile(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "tokens file") {
		t.Fatalf("a missing tokens file = %v, want an error naming it", err)
	}
}

// Production refuses to start with a short secret, naming the token and
// never printing the secret; demo starts and warns the same way.
func TestShortSecrets(t *testing.T) {
	const tokens = "alice:admin:tiny-secret,viewer:" + testViewerSecret
	env := map[string]string{"SWITCHYARD_TOKENS": tokens, "SWITCHYARD_DATABASE_URL": unreachableURL}
	_, err := runCommand(t, env, "serve", "--addr", "127.0.0.1:0")
	if !errors.Is(err, errRequirements) || !strings.Contains(err.Error(), `- token_secrets: `) ||
		!strings.Contains(err.Error(), `token "alice" (admin) has 11`) || strings.Contains(err.Error(), "tiny-secret") {
		t.Fatalf("production start = %v, want a refusal naming alice's short secret without showing it", err)
	}

	logs := &storetest.LogBuffer{}
	s := startServeLogging(t, map[string]string{"SWITCHYARD_TOKENS": tokens}, logs)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"token secrets production refuses\"") ||
		!strings.Contains(logs.String(), `token \"alice\" (admin) has 11`) || strings.Contains(logs.String(), "tiny-secret") {
		t.Fatalf("demo start logged %q, want a warning naming alice's short secret without showing it", logs.String())
	}
}

// The tokens come from one place: the environment or the file.
func TestTokensFromOnePlace(t *testing.T) {
	path := writeTokensFile(t, "alice:admin:alice-secret\n")
	_, err := runCommand(t, map[string]string{"SWITCHYARD_TOKENS": "bob:admin:bob-secret", "SWITCHYARD_TOKENS_FILE": path}, "serve")
	if err == nil || !strings.Contains(err.Error(), "SWITCHYARD_TOKENS and SWITCHYARD_TOKENS_FILE are both set") {
		t.Fatalf("serve with both = %v, want a refusal", err)
	}
}

// A reload production would refuse keeps the tokens in force; demo takes
// the same file and warns.
func TestReloadInProductionKeepsTokensItWouldRefuse(t *testing.T) {
	strong := named("alice", switchyard.RoleAdmin, testAdminSecret)
	tests := []struct {
		name, content string
		mode          string
		kept          bool
		wantErr       string
	}{
		{name: "short secret", content: "bob:admin:short-secret\n", mode: switchyard.ModeProduction, kept: true, wantErr: `token_secrets: `},
		{name: "no admin", content: "bob:viewer:" + testViewerSecret + "\n", mode: switchyard.ModeProduction, kept: true, wantErr: `admin_tokens: `},
		{name: "short secret in demo", content: "bob:admin:short-secret\n", mode: switchyard.ModeDemo},
		{name: "strong secret", content: "bob:admin:" + testViewerSecret + "\n", mode: switchyard.ModeProduction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTokensFile(t, tt.content)
			ops := newOperators(slog.New(slog.NewTextHandler(io.Discard, nil)), path, []server.Token{strong}, nil)
			err := ops.reload(tt.mode)
			if (err != nil) != tt.kept || (tt.kept && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("reload = %v, want refused %v naming %q", err, tt.kept, tt.wantErr)
			}
			names := []string{}
			for _, tok := range ops.current() {
				names = append(names, tok.Operator.Name)
			}
			want := []string{"bob"}
			if tt.kept {
				want = []string{"alice"}
			}
			if !reflect.DeepEqual(names, want) {
				t.Fatalf("tokens after the reload = %v, want %v", names, want)
			}
		})
	}
	ops := newOperators(slog.New(slog.NewTextHandler(io.Discard, nil)), "", nil, nil)
	if err := ops.reload(switchyard.ModeDemo); err == nil || !strings.Contains(err.Error(), "no tokens file") {
		t.Fatalf("reload without a tokens file = %v, want an error saying so", err)
	}
}
