package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// process is a running `switchyard serve` started through run.
type process struct {
	url, token string
	// metrics is the metrics address's URL, with --metrics-addr.
	metrics string
	stop    func() error
}

// startServe runs `switchyard serve` on a free port with the given
// environment and waits until it says where it listens.
func startServe(t testing.TB, env map[string]string, args ...string) *process {
	t.Helper()
	return startServeLogging(t, env, io.Discard, args...)
}

// startServeLogging is startServe with the service log written to logs.
func startServeLogging(t testing.TB, env map[string]string, logs io.Writer, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...),
			func(k string) string { return env[k] }, strings.NewReader(""), pw, logs)
		pw.CloseWithError(fmt.Errorf("serve returned: %v", err))
		errc <- err
	}()
	s := &process{}
	lines := bufio.NewScanner(pr)
	for s.url == "" && lines.Scan() {
		line := lines.Text()
		if tok, ok := strings.CutPrefix(line, "demo admin token (generated, shown once): "); ok {
			s.token = tok
		}
		if u, ok := strings.CutPrefix(line, "metrics on "); ok {
			s.metrics = u
		}
		if i := strings.Index(line, "listening on "); i >= 0 {
			s.url = line[i+len("listening on "):]
		}
	}
	if s.url == "" {
		cancel()
		t.Fatalf("serve did not start: %v", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	s.stop = func() error {
		cancel()
		return <-errc
	}
	return s
}

// runbook returns the shell commands of the README's operator runbook.
func runbook(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- runbook -->\n```sh\n(.*?)```\n<!-- /runbook -->").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no runbook block")
	}
	return string(m[1])
}

// runRunbook runs the README's runbook verbatim with bash and curl, with
// only the address replaced by the test server's.
func runRunbook(t *testing.T, s *process) string {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; the runbook needs it")
	}
	script := "set -e\n" + strings.ReplaceAll(runbook(t), "http://127.0.0.1:8080", s.url)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "TOKEN="+s.token)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("runbook failed: %v\n%s", err, out)
	}
	return string(out)
}

func getJSON(t testing.TB, s *process, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type verification struct {
	OK      bool  `json:"ok"`
	Entries int64 `json:"entries"`
}

type status struct {
	Revision int64           `json:"revision"`
	Profile  string          `json:"profile"`
	Flags    map[string]bool `json:"flags"`
}

func TestRunbookInDemoMode(t *testing.T) {
	s := startServe(t, nil)
	if s.token == "" {
		t.Fatal("demo mode printed no admin token")
	}
	out := runRunbook(t, s)
	if !strings.Contains(out, `"ok":true`) {
		t.Fatalf("runbook output does not end with a verified audit chain:\n%s", out)
	}
	var st status
	getJSON(t, s, "/v1/admin/runtime/status", &st)
	if st.Revision != 7 || st.Profile != "primary" || st.Flags["EXAM_MODE"] || st.Flags["FREEZE_UPDATES"] {
		t.Fatalf("after the runbook: %+v, want revision 7 restored to primary with flags off", st)
	}
	var v verification
	getJSON(t, s, "/v1/admin/audit/verify", &v)
	if !v.OK || v.Entries != 6 {
		t.Fatalf("verify = %+v, want ok with 6 entries", v)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("graceful shutdown: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown command", []string{"launch"}, nil, `unknown command "launch"`},
		{"no command", nil, nil, "no command given"},
		{"bad mode", []string{"serve", "--mode", "turbo"}, nil, `mode "turbo"`},
		{"production without database", []string{"serve", "--mode", "production"}, nil, "- database_url: Postgres is production's audited truth"},
		{"bad duration from env", []string{"serve"}, map[string]string{"SWITCHYARD_SESSION_TTL": "forever"}, "SWITCHYARD_SESSION_TTL"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, nil, `log level "loud"`},
		{"negative session rate", []string{"serve", "--session-rate", "-1"}, nil, `session-rate: "-1" is not a rate`},
		{"no session burst", []string{"serve"}, map[string]string{"SWITCHYARD_SESSION_BURST": "0"}, "SWITCHYARD_SESSION_BURST"},
		{"bad max sessions", []string{"serve", "--max-sessions", "many"}, nil, `max-sessions: "many" is not a whole number`},
		{"bad trusted proxy", []string{"serve", "--trusted-proxies", "10.0.0.1,lb.internal"}, nil, `"lb.internal" is not an address or a CIDR range`},
		{"pprof without a metrics address", []string{"serve", "--pprof"}, nil, "--pprof needs --metrics-addr"},
		{"bad flag label count", []string{"serve", "--metrics-flag-labels", "-1"}, nil, "metrics-flag-labels"},
		{"gRPC traces", []string{"serve"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "http/protobuf only"},
		{"bad tokens", []string{"serve", "--tokens", "root:x"}, nil, "SWITCHYARD_TOKENS"},
		{"bad console setting", []string{"serve"}, map[string]string{"SWITCHYARD_CONSOLE": "maybe"}, "SWITCHYARD_CONSOLE"},
		{"production without tokens", []string{"serve", "--database-url", "postgres://127.0.0.1:1/x"}, nil, "- admin_tokens: "},
		{"migrate without database", []string{"migrate", "up"}, nil, "no database"},
		{"migrate without subcommand", []string{"migrate"}, nil, "migrate needs a subcommand"},
		{"audit without subcommand", []string{"audit"}, nil, "audit needs a subcommand"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tt.args, func(k string) string { return tt.env[k] }, strings.NewReader(""), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// The README's configuration table lists every setting serve accepts.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range (&config{}).settings() {
		row := fmt.Sprintf("| `--%s` | `%s` |", s.flag, s.env)
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md configuration table has no row starting %q", row)
		}
	}
}
