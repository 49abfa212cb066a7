// Package memory is the embedded, in-memory Store: the zero-setup default
// of demo mode. It keeps the same promises as the Postgres store (atomic
// changes, a hash-chained append-only audit log, first-writer-wins
// sessions), so demo mode behaves like production.
package memory

import (
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
)

var _ store.Store = (*Store)(nil)

// Store is an in-memory store.Store. The zero value is not usable: call New.
type Store struct {
	now func() time.Time

	mu        sync.RWMutex
	revisions []*switchyard.Revision // revisions[i].Number == i+1
	// sessions maps a session ID to its element of sessionOrder, which
	// holds the snapshots oldest created first, so the oldest is dropped
	// first when maxSessions is reached.
	sessions     map[string]*list.Element
	sessionOrder *list.List // of switchyard.Snapshot
	maxSessions  int
	audit        []store.AuditEntry
	creates      int
	// keys maps an idempotency key to the request hash and audit sequence
	// number of the change it applied; keyOrder lists the keys oldest
	// first, so expired ones are swept from its front.
	keys     map[string]keyed
	keyOrder []string
	// requests are the change requests.
	requests requests
}

// keyed is what the store keeps of an idempotency key.
type keyed struct {
	requestHash string
	seq         int64
	at          time.Time
}

// keySweepBatch bounds how many expired keys one keyed change sweeps, so
// no change pays for a long backlog at once.
const keySweepBatch = 100

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock the store stamps revisions, audit entries and
// session expiry with; tests use it to move time.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// WithMaxSessions bounds the sessions the store keeps to n: creating one
// more drops the oldest created, whose session is pinned afresh if it comes
// back. Without it (or with n <= 0) the store keeps every live session.
func WithMaxSessions(n int) Option { return func(s *Store) { s.maxSessions = n } }

// New returns a store holding initial as revision 1 (InitialRevision when
// nil), under an ID of its own: each store starts a history, so a demo
// server restarted serves revisions whose numbers repeat the last run's
// and whose IDs do not.
func New(initial *switchyard.Revision, opts ...Option) *Store {
	s := &Store{now: time.Now, sessions: map[string]*list.Element{}, sessionOrder: list.New(), keys: map[string]keyed{},
		requests: newRequests()}
	for _, o := range opts {
		o(s)
	}
	if initial == nil {
		initial = switchyard.InitialRevision(s.now())
	}
	first := initial.Clone()
	first.Number = 1
	first.ID, first.Parent = switchyard.NewRevisionID(), ""
	s.revisions = []*switchyard.Revision{first}
	return s
}

// NewDemo returns a store seeded with the demo fixtures: the default
// catalog and profiles with primary active. The fixtures are deterministic,
// so every demo starts from the same state.
func NewDemo(opts ...Option) *Store { return New(nil, opts...) }

// Current implements store.Store.
func (s *Store) Current(ctx context.Context) (*switchyard.Revision, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.revisions[len(s.revisions)-1], nil
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n < 1 || n > int64(len(s.revisions)) {
		return nil, switchyard.Errorf(switchyard.CodeNotFound, "revision %d does not exist", n)
	}
	return s.revisions[n-1], nil
}

// Apply implements store.Store. The next revision is made and validated
// outside the lock, so compiling the flags of a large import holds up no
// read; it is stored only if the revision it was made from is still the
// current one, else it is made again from the one that is. A caller that
// gives up meanwhile changes nothing and leaves no audit entry, as one
// that gave up before calling.
func (s *Store) Apply(ctx context.Context, c store.Change) (*switchyard.Revision, store.AuditEntry, error) {
	c.Attempt.Action, c.Attempt.Target = c.Mutation.Action, c.Mutation.Target
	for {
		s.mu.RLock()
		cur := s.revisions[len(s.revisions)-1]
		s.mu.RUnlock()
		now := s.now()
		next, err := store.Next(ctx, cur, c, now)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, store.AuditEntry{}, ctxErr
		}
		if rev, e, stored, err := s.commit(c, cur, next, now, err); stored {
			return rev, e, err
		}
	}
}

// commit stores next, which c made of cur at now, or records refusal,
// unless cur is no longer the current revision: then stored is false and
// nothing changed.
func (s *Store) commit(c store.Change, cur, next *switchyard.Revision, now time.Time, refusal error) (
	rev *switchyard.Revision, e store.AuditEntry, stored bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keyed(c.IdempotencyKey); ok {
		if err := k.Answers(c.Attempt); err != nil {
			return nil, s.reject(c.Attempt, now, s.revisions[len(s.revisions)-1].Number, err), true, err
		}
		return s.revisions[k.Entry.Revision-1], k.Entry, true, nil
	}
	if s.revisions[len(s.revisions)-1] != cur {
		return nil, store.AuditEntry{}, false, nil
	}
	if refusal != nil {
		return nil, s.reject(c.Attempt, now, cur.Number, refusal), true, refusal
	}
	e, err = store.NewAuditEntry(c.Attempt, now, next.Number, nil, c.Mutation.View(cur), c.Mutation.View(next))
	if err != nil {
		return nil, store.AuditEntry{}, true, err
	}
	s.revisions = append(s.revisions, next)
	e = s.append(e)
	s.keep(c.Attempt, e, now)
	return next, e, true, nil
}

// keyed returns the kept change key names; s.mu must be held.
func (s *Store) keyed(key string) (store.Keyed, bool) {
	k, ok := s.keys[key]
	if key == "" || !ok {
		return store.Keyed{}, false
	}
	return store.Keyed{RequestHash: k.requestHash, Entry: s.audit[k.seq-1]}, true
}

// keep keeps a's idempotency key, if it has one, for the applied entry e,
// and sweeps a bounded number of keys older than store.KeyTTL; s.mu must
// be held.
func (s *Store) keep(a store.Attempt, e store.AuditEntry, now time.Time) {
	if a.IdempotencyKey == "" {
		return
	}
	for n := 0; n < keySweepBatch && len(s.keyOrder) > 0; n++ {
		oldest := s.keyOrder[0]
		if now.Sub(s.keys[oldest].at) < store.KeyTTL {
			break
		}
		delete(s.keys, oldest)
		s.keyOrder = s.keyOrder[1:]
	}
	s.keys[a.IdempotencyKey] = keyed{requestHash: a.RequestHash, seq: e.Seq, at: now}
	s.keyOrder = append(s.keyOrder, a.IdempotencyKey)
}

// Keyed implements store.Store.
func (s *Store) Keyed(ctx context.Context, key string) (store.Keyed, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.keyed(key)
	if !ok {
		return store.Keyed{}, switchyard.Errorf(switchyard.CodeNotFound, "no change is kept under Idempotency-Key %q", key)
	}
	return k, nil
}

// Reject implements store.Store.
func (s *Store) Reject(ctx context.Context, a store.Attempt, why error) (store.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reject(a, s.now(), s.revisions[len(s.revisions)-1].Number, why), nil
}

// Record implements store.Store.
func (s *Store) Record(ctx context.Context, a store.Attempt, before, after any) (store.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return store.AuditEntry{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keyed(a.IdempotencyKey); ok {
		if err := k.Answers(a); err != nil {
			return store.AuditEntry{}, err
		}
		return k.Entry, nil
	}
	now := s.now()
	e, err := store.NewAuditEntry(a, now, s.revisions[len(s.revisions)-1].Number, nil, before, after)
	if err != nil {
		return store.AuditEntry{}, err
	}
	e = s.append(e)
	s.keep(a, e, now)
	return e, nil
}

// reject appends a rejected entry; s.mu must be held.
func (s *Store) reject(a store.Attempt, now time.Time, revision int64, why error) store.AuditEntry {
	// Without before and after the entry always encodes.
	e, _ := store.NewAuditEntry(a, now, revision, why, nil, nil)
	return s.append(e)
}

// append chains and appends e; s.mu must be held.
func (s *Store) append(e store.AuditEntry) store.AuditEntry {
	e.Seq = int64(len(s.audit)) + 1
	if len(s.audit) > 0 {
		e.PrevHash = s.audit[len(s.audit)-1].Hash
	}
	e.Hash = store.ChainHash(e.PrevHash, e)
	s.audit = append(s.audit, e)
	return e
}

// CreateSession implements store.Store. With WithMaxSessions, a new
// session beyond the bound drops the oldest created.
func (s *Store) CreateSession(ctx context.Context, snap switchyard.Snapshot) (switchyard.Snapshot, bool, error) {
	if err := switchyard.ValidateSessionID(snap.SessionID); err != nil {
		return switchyard.Snapshot{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if el, ok := s.sessions[snap.SessionID]; ok {
		if old := el.Value.(switchyard.Snapshot); now.Before(old.ExpiresAt) {
			return old, false, nil
		}
		s.dropSession(el)
	}
	s.sessions[snap.SessionID] = s.sessionOrder.PushBack(snap)
	if s.maxSessions > 0 && s.sessionOrder.Len() > s.maxSessions {
		s.dropSession(s.sessionOrder.Front())
	}
	s.creates++
	if s.creates%1024 == 0 {
		s.sweep(now)
	}
	return snap, true, nil
}

// dropSession forgets the session of el; s.mu must be held.
func (s *Store) dropSession(el *list.Element) {
	delete(s.sessions, s.sessionOrder.Remove(el).(switchyard.Snapshot).SessionID)
}

// sweep drops expired sessions, so memory stays bounded by the live ones;
// s.mu must be held.
func (s *Store) sweep(now time.Time) {
	for el := s.sessionOrder.Front(); el != nil; {
		next := el.Next()
		if !now.Before(el.Value.(switchyard.Snapshot).ExpiresAt) {
			s.dropSession(el)
		}
		el = next
	}
}

// Session implements store.Store.
func (s *Store) Session(ctx context.Context, id string) (switchyard.Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	el, ok := s.sessions[id]
	if !ok || !s.now().Before(el.Value.(switchyard.Snapshot).ExpiresAt) {
		return switchyard.Snapshot{}, switchyard.Errorf(switchyard.CodeNotFound, "session %q does not exist or has expired", id)
	}
	return el.Value.(switchyard.Snapshot), nil
}

// Audit implements store.Store.
func (s *Store) Audit(ctx context.Context, q store.AuditQuery) ([]store.AuditEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	page := store.NewAuditPage(q)
	end := int64(len(s.audit))
	if q.Before > 0 && q.Before-1 < end {
		end = q.Before - 1
	}
	for i := end - 1; i >= 0; i-- {
		if !page.Add(s.audit[i]) {
			break
		}
	}
	return page.Entries, nil
}

// VerifyAudit implements store.Store.
func (s *Store) VerifyAudit(ctx context.Context) (store.Verification, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var c store.Chain
	for _, e := range s.audit {
		if !c.Add(e) {
			break
		}
	}
	return c.Result(), nil
}

// Tamper replaces audit entry seq with what edit makes of it, without
// rehashing, as an attacker with write access would. It exists so the
// contract suite can prove that verification catches tampering.
func (s *Store) Tamper(seq int64, edit func(*store.AuditEntry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	edit(&s.audit[seq-1])
}
