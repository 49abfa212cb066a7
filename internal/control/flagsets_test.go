package control

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

func TestInstallNeverGoesBack(t *testing.T) {
	// A slow reload that read revision 1 must not undo revision 2, which a
	// write installed in the meantime.
	ctx := context.Background()
	st := memory.NewDemo()
	first, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := st.Apply(ctx, store.Change{Attempt: store.Attempt{Actor: "replica-2", Role: "admin", Reason: "r"},
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil {
		t.Fatal(err)
	}
	f := newFlagSets(slog.New(slog.DiscardHandler), st, switchyard.ModeDemo, DefaultCacheTTL, time.Now, "")
	for _, rev := range []*switchyard.Revision{second, first} {
		if err := f.install(rev); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.cur.Load().rev.Number; got != 2 {
		t.Fatalf("current = revision %d, want 2", got)
	}
	// Revision 1 was never current here, so it is not cached; it is read
	// from the store when a session needs it.
	fs, err := f.forRevision(ctx, 1)
	if err != nil || fs.Revision() != 1 {
		t.Fatalf("forRevision(1) = %v, %v", fs, err)
	}
}
