package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

// History is a store whose revisions a test makes and rewinds, as a
// database restored from an earlier backup is rewound: it numbers its next
// revision as the lost one was numbered, under another ID. Everything but
// the revisions (sessions, changes, the audit log) is the wrapped store's.
type History struct {
	store.Store
	mu   sync.Mutex
	revs []*switchyard.Revision
}

// NewHistory returns a History whose first revision is st's current one.
func NewHistory(t testing.TB, st store.Store) *History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &History{Store: st, revs: []*switchyard.Revision{first}}
}

// Current implements store.Store: the newest revision made.
func (h *History) Current(context.Context) (*switchyard.Revision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.revs[len(h.revs)-1], nil
}

// Revision implements store.Store: revision n of the history held now.
func (h *History) Revision(_ context.Context, n int64) (*switchyard.Revision, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n < 1 || n > int64(len(h.revs)) {
		return nil, switchyard.Errorf(switchyard.CodeNotFound, "revision %d does not exist", n)
	}
	return h.revs[n-1], nil
}

// Change commits the next revision, which m makes of the current one, as
// a change made behind the caller's back would, and returns it.
func (h *History) Change(t testing.TB, m switchyard.Mutation) *switchyard.Revision {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	next, err := m.Apply(h.revs[len(h.revs)-1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h.revs = append(h.revs, next)
	return next
}

// Rewind drops the revisions after n, as restoring a backup taken at
// revision n does.
func (h *History) Rewind(n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.revs = h.revs[:n]
}
