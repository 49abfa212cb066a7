package control

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store/memory"
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

// Installed revisions reach the state file, written off the path of the
// change: after a burst of changes and a flush the file holds the newest,
// and an older revision saved late never replaces it.
func TestStateFileFollowsInstalls(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := memory.NewDemo()
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, StateDir: dir}, st)
	for i := range 10 {
		if _, err := c.Apply(ctx, examMode(i%2 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rev, err := ReadStateFile(dir, switchyard.ModeDemo); err != nil || rev.Number != 11 || rev.System.ExamMode {
		t.Fatalf("state file after ten changes = %v, %v; want revision 11, the last change's, exam mode off", rev, err)
	}
	old, err := st.Revision(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	b := c.acquire()
	defer b.leave()
	// A slow reload of revision 3 comes back after the changes.
	if err := b.flags.learn(old); err != nil {
		t.Fatal(err)
	}
	b.flags.save()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rev, err := ReadStateFile(dir, switchyard.ModeDemo); err != nil || rev.Number != 11 {
		t.Fatalf("state file after revision 3 was read late = %v, %v; want revision 11 still", rev, err)
	}
}
