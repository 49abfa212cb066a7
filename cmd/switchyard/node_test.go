package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeCheckDir holds the Node check of the OpenFeature JavaScript SDKs.
const nodeCheckDir = "../../examples/node-ofrep"

// TestNodeOFREPCheck runs examples/node-ofrep against a live server: the
// OpenFeature JavaScript server and web SDKs with their OFREP providers
// read typed values, errors, a pinned session and flagd-file flags with a
// client token, and the web provider, with its defaults, hears a change
// over the event stream. It needs node and npm (npm ci fetches the
// locked packages), and skips, saying so, where they are not installed.
func TestNodeOFREPCheck(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the examples/node-ofrep check of the JavaScript SDKs does not run", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	install.Dir = nodeCheckDir
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in examples/node-ofrep: %v\n%s", err, out)
	}

	const adminSecret, clientSecret = testAdminSecret, "node-check-client-secret-0123456789abcdef"
	s := startServe(t, nil, "--flags", filepath.Join(nodeCheckDir, "flags.json"), "--require-client-token",
		"--tokens", "ops:admin:"+adminSecret+",web:client:"+clientSecret)
	defer s.stop()
	check := exec.CommandContext(ctx, "node", "check.mjs")
	check.Dir = nodeCheckDir
	check.Env = append(os.Environ(), "SWITCHYARD_URL="+s.url, "SWITCHYARD_ADMIN_TOKEN="+adminSecret, "SWITCHYARD_CLIENT_TOKEN="+clientSecret)
	out, err := check.CombinedOutput()
	t.Logf("node check.mjs:\n%s", out)
	if err != nil {
		t.Fatalf("the Node check failed: %v", err)
	}
}
