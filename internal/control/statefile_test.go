package control

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

func TestStateFileRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	good := switchyard.InitialRevision(at)
	invalid := switchyard.InitialRevision(at)
	invalid.Catalog = nil
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		mode    string
		wantErr string
	}{
		{name: "written then read", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, good, "production", at); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "no file", mode: "production", prepare: func(*testing.T, string) {}, wantErr: "no such file"},
		{name: "corrupt", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := os.WriteFile(StateFilePath(dir, "production"), []byte(`{"revision":`), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "decode"},
		{name: "only another mode's file", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, good, "demo", at); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "no such file"},
		{name: "another mode's file under this mode's name", mode: "production", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, good, "demo", at); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(StateFilePath(dir, "demo"), StateFilePath(dir, "production")); err != nil {
				t.Fatal(err)
			}
		}, wantErr: `written in "demo" mode`},
		{name: "invalid revision", mode: "demo", prepare: func(t *testing.T, dir string) {
			if err := writeStateFile(dir, invalid, "demo", at); err != nil {
				t.Fatal(err)
			}
		}, wantErr: "validate revision 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.prepare(t, dir)
			rev, err := ReadStateFile(dir, tt.mode)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadStateFile = %v, %v; want an error containing %q", rev, err, tt.wantErr)
				}
				return
			}
			if err != nil || rev.Number != good.Number || rev.ActiveProfile != good.ActiveProfile {
				t.Fatalf("ReadStateFile = %+v, %v; want revision %d back", rev, err, good.Number)
			}
			info, err := os.Stat(StateFilePath(dir, tt.mode))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("state file mode = %v, %v; want 0600", info.Mode().Perm(), err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Fatalf("the directory holds %d files, want only the state file", len(entries))
			}
		})
	}
}
