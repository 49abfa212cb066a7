package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// asCommand, set in the environment of the test binary, makes it the
// switchyard command, so scripts run by tests call switchyard without a
// build.
const asCommand = "SWITCHYARD_TEST_BINARY_AS_COMMAND"

func TestMain(m *testing.M) {
	if os.Getenv(asCommand) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// commandDir returns a directory holding a switchyard command: this test
// binary, run as the command.
func commandDir(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\n" + asCommand + "=1 exec '" + self + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "switchyard"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// cliRunbook returns the README's CLI runbook: its commands, what the
// operator types at each prompt (the lines "# > PHRASE"), and the lines of
// output it shows (the other comment lines right after a command).
func cliRunbook(t *testing.T) (script string, typed, shown []string) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- runbook-cli -->\n```sh\n(.*?)```\n<!-- /runbook-cli -->").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no CLI runbook block")
	}
	afterCommand := false
	for _, line := range strings.Split(string(m[1]), "\n") {
		switch {
		case strings.HasPrefix(line, "# > "):
			typed = append(typed, strings.TrimPrefix(line, "# > "))
		case strings.HasPrefix(line, "#") && afterCommand:
			shown = append(shown, strings.TrimSpace(strings.TrimPrefix(line, "#")))
		case strings.HasPrefix(line, "#"):
		default:
			afterCommand = strings.TrimSpace(line) != ""
		}
	}
	return string(m[1]), typed, shown
}

// The README's CLI runbook runs verbatim with bash, the phrases it shows
// typed at its prompts, against a demo and a production server, and shows
// what the README says it shows.
func TestCLIRunbook(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed; the runbook needs it")
	}
	script, typed, shown := cliRunbook(t)
	dir := commandDir(t)
	for _, mode := range []string{"demo", "production"} {
		t.Run(mode, func(t *testing.T) {
			var env map[string]string
			token := ""
			if mode == "production" {
				env, token = productionEnv(t), testAdminSecret
			}
			s := startServe(t, env)
			defer s.stop()
			if token != "" {
				s.token = token
			}
			cmd := exec.Command("bash", "-c", "set -e\n"+strings.ReplaceAll(script, "http://127.0.0.1:8080", s.url))
			cmd.Env = append(os.Environ(), "TOKEN="+s.token, "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
			cmd.Stdin = strings.NewReader(strings.Join(typed, "\n") + "\n")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the CLI runbook failed: %v\n%s", err, out)
			}
			for _, line := range shown {
				if !strings.Contains(squeeze(string(out)), squeeze(line)) {
					t.Errorf("the runbook does not show %q:\n%s", line, out)
				}
			}
			var st status
			getJSON(t, s, "/v1/admin/runtime/status", &st)
			if st.Revision != 7 || st.Profile != "primary" || st.Flags["EXAM_MODE"] || st.Flags["FREEZE_UPDATES"] {
				t.Fatalf("after the runbook: %+v, want revision 7 restored to primary with flags off", st)
			}
			if !strings.Contains(string(out), "audit chain intact: 6 entries") {
				t.Fatalf("the runbook does not end with a verified audit chain:\n%s", out)
			}
		})
	}
}
