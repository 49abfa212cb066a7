package control

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// The bounds and pace of sessions pinned while the store cannot store
// them.
const (
	// maxLocalPins bounds the sessions pinned in process (Config.MaxSessions
	// may bound them lower): an exam starting during an outage pins
	// thousands. Each costs about a hundred bytes (the resolved modules
	// are shared per revision). One more drops the oldest.
	maxLocalPins = 100_000
	// sessionRetry is how long after a failed session read or write the
	// store is not asked again for sessions: during an outage a new
	// session is pinned at once instead of after each call's deadline.
	// The write-back loop asks sooner.
	sessionRetry = 2 * time.Second
	// writeBackInterval is how often local pins are offered to the store,
	// and the pins file rewritten when it changed.
	writeBackInterval = time.Second
	// writeBackBatch is how many waiting pins are taken at a time, and
	// writeBackParallel how many of them are written at once: together
	// they let the store batch the creates, and a store that stops
	// answering is noticed within one deadline.
	writeBackBatch    = 500
	writeBackParallel = 64
	// maxPinTemplates bounds the resolved snapshots kept, one a revision
	// that local pins point to; an outage rarely spans more than one.
	maxPinTemplates = 64
)

// localPin is a session pinned by this replica: to the revision it served
// when the store could not be asked (Stored false, waiting to be written),
// or read back from the pins file after a restart (Stored true: the store
// holds it).
type localPin struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id,omitempty"`
	Revision  int64  `json:"revision"`
	// RevisionID is the pinned revision's ID; empty in pins files written
	// before revisions had IDs, whose pins name their revision by number.
	RevisionID string    `json:"revision_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	Stored     bool      `json:"stored"`
}

// pins are the sessions a backend pinned or restored outside the store,
// and whether the store answers session calls.
type pins struct {
	mu sync.Mutex
	// local maps a session ID to its element of order, which holds the
	// pins oldest first: at max pins, a new one drops the oldest. A
	// session whose pin is dropped is pinned again when it comes back, to
	// the revision served then; during an outage no change can be made, so
	// that is the revision it had.
	local map[string]*list.Element
	order *list.List // of localPin
	max   int
	// templates holds one resolved snapshot per revision ID, whose
	// modules every pin to that revision shares.
	templates map[string]switchyard.Snapshot
	// downUntil is when the store may be asked for sessions again.
	downUntil time.Time
	// dirty says the pins file is behind what is pinned.
	dirty bool
	// divergences counts local pins the store had already pinned
	// otherwise: another replica pinned the session first.
	divergences atomic.Int64
}

// newPins returns an empty table of at most max local pins.
func newPins(max int) *pins {
	return &pins{local: map[string]*list.Element{}, order: list.New(), max: max, templates: map[string]switchyard.Snapshot{}}
}

// get returns the local pin of session id, unless it has expired: an
// expired one is forgotten, as the store forgets an expired snapshot.
func (p *pins) get(id string, now time.Time) (localPin, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	el, ok := p.local[id]
	if !ok {
		return localPin{}, false
	}
	if lp := el.Value.(localPin); now.Before(lp.ExpiresAt) {
		return lp, true
	}
	p.remove(el)
	return localPin{}, false
}

// add pins session id to rev unless it is pinned already, and returns the
// pin it has. At the bound, the oldest pin is dropped.
func (p *pins) add(lp localPin) localPin {
	p.mu.Lock()
	defer p.mu.Unlock()
	if have, ok := p.local[lp.SessionID]; ok {
		return have.Value.(localPin)
	}
	if p.order.Len() >= p.max {
		p.remove(p.order.Front())
	}
	p.local[lp.SessionID] = p.order.PushBack(lp)
	p.dirty = true
	return lp
}

// remove forgets the pin of el; p.mu must be held.
func (p *pins) remove(el *list.Element) {
	delete(p.local, p.order.Remove(el).(localPin).SessionID)
	p.dirty = true
}

// drop forgets session id's local pin once the store holds its pin.
func (p *pins) drop(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if el, ok := p.local[id]; ok {
		p.remove(el)
	}
}

// pending returns up to n pins waiting to be stored, oldest first,
// forgetting the ones that expired while they waited.
func (p *pins) pending(n int, now time.Time) []localPin {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []localPin
	for el := p.order.Front(); el != nil && len(out) < n; {
		next := el.Next()
		switch lp := el.Value.(localPin); {
		case !now.Before(lp.ExpiresAt):
			p.remove(el)
		case !lp.Stored:
			out = append(out, lp)
		}
		el = next
	}
	return out
}

// waiting counts the pins waiting to be stored.
func (p *pins) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for el := p.order.Front(); el != nil; el = el.Next() {
		if !el.Value.(localPin).Stored {
			n++
		}
	}
	return n
}

// storeDown says whether session calls should skip the store now.
func (p *pins) storeDown(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.downUntil)
}

// failed records that the store did not answer a session call.
func (p *pins) failed(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.downUntil = now.Add(sessionRetry)
}

// answered records that the store answered a session call.
func (p *pins) answered() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.downUntil = time.Time{}
}

// snapshot builds the snapshot of lp from rev, its revision, sharing the
// resolved modules of every pin to rev.
func (p *pins) snapshot(lp localPin, rev *switchyard.Revision) switchyard.Snapshot {
	p.mu.Lock()
	t, ok := p.templates[rev.ID]
	if !ok {
		t = evaluator.NewSnapshot("", "", rev, lp.CreatedAt, 0)
		if len(p.templates) >= maxPinTemplates {
			clear(p.templates)
		}
		p.templates[rev.ID] = t
	}
	p.mu.Unlock()
	t.SessionID, t.UserID, t.CreatedAt, t.ExpiresAt = lp.SessionID, lp.UserID, lp.CreatedAt, lp.ExpiresAt
	return t
}

// pinsFile is the content of a backend's pins file: the sessions it
// pinned or read, so that a replica restarted while the store is down
// keeps serving them as pinned, and writes the ones still waiting.
type pinsFile struct {
	Mode      string     `json:"mode"`
	WrittenAt time.Time  `json:"written_at"`
	Pins      []localPin `json:"pins"`
}

// PinsFilePath is the pins file of mode inside Config.StateDir.
func PinsFilePath(dir, mode string) string {
	return filepath.Join(dir, "sessions."+mode+".json")
}

// save writes the pins file: the local pins and the snapshots read from
// the store, live ones only, at most as many as the table holds.
func (p *pins) save(dir, mode string, read []switchyard.Snapshot, now time.Time) error {
	p.mu.Lock()
	f := pinsFile{Mode: mode, WrittenAt: now.UTC(), Pins: make([]localPin, 0, p.order.Len()+len(read))}
	for el := p.order.Front(); el != nil; el = el.Next() {
		f.Pins = append(f.Pins, el.Value.(localPin))
	}
	p.dirty = false
	p.mu.Unlock()
	for _, s := range read {
		if len(f.Pins) >= p.max {
			break
		}
		if now.Before(s.ExpiresAt) {
			f.Pins = append(f.Pins, localPin{SessionID: s.SessionID, UserID: s.UserID, Revision: s.Revision,
				RevisionID: s.RevisionID, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt, Stored: true})
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode the pins file: %w", err)
	}
	return writeFileAtomic(PinsFilePath(dir, mode), b)
}

// load reads the pins file of mode in dir, keeping the live pins, and
// returns how many pins the table holds then. A missing file is no pins; a
// file of another mode is refused.
func (p *pins) load(dir, mode string, now time.Time) (int, error) {
	path := PinsFilePath(dir, mode)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the pins file: %w", err)
	}
	var f pinsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return 0, fmt.Errorf("decode %s: %w", path, err)
	}
	if f.Mode != mode {
		return 0, fmt.Errorf("%s was written in %q mode, not %q", path, f.Mode, mode)
	}
	for _, lp := range f.Pins {
		// A stored pin without its revision's ID (a file written before
		// revisions had IDs) is read again from the store, which names it.
		if switchyard.ValidateSessionID(lp.SessionID) != nil || lp.Revision < 1 || !now.Before(lp.ExpiresAt) ||
			lp.Stored && lp.RevisionID == "" {
			continue
		}
		p.add(lp)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.order.Len(), nil
}

// touch records that the pins file is behind: a snapshot was read.
func (p *pins) touch() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dirty = true
}

// dirtyNow says whether the pins file is behind.
func (p *pins) dirtyNow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dirty
}

// probeSession is the session ID the write-back asks the store for to
// learn whether its session and write path answers again: no client can
// pin it, since session IDs have no spaces.
const probeSession = "switchyard probe"

// probe asks the store for probeSession when session calls or a change
// failed, and clears both once the store answers, found or not: a store
// reached through a cache (Redis) may serve revisions while the database
// behind it does not answer, and only a call that reaches the database
// says it is back.
func (c *Core) probe(ctx context.Context, b *backend) {
	if b.writeFailure() == nil && !b.pins.storeDown(c.now()) {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	_, err := b.store.Session(rctx, probeSession)
	if err != nil && switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		return
	}
	b.pins.answered()
	b.wrote(nil)
}

// writeBack offers the pins waiting to the store until none is left or
// the store stops answering: each is created there, first writer wins; a
// pin the store already held for another revision is a divergence, logged
// and counted, and the stored pin is served from then on. Creates run
// writeBackParallel at a time, so the store batches them; a round that
// meets a store that does not answer ends there.
func (c *Core) writeBack(ctx context.Context, b *backend) {
	for {
		batch := b.pins.pending(writeBackBatch, c.now())
		select {
		case <-b.done:
			// The backend is stopping: what is left waits in the pins file.
			return
		default:
		}
		if len(batch) == 0 {
			return
		}
		var unavailable atomic.Bool
		var wg sync.WaitGroup
		work := make(chan localPin)
		revs := &roundRevisions{flags: b.flags, read: map[int64]*switchyard.Revision{}}
		for range min(writeBackParallel, len(batch)) {
			wg.Go(func() {
				for lp := range work {
					if !c.writeBackOne(ctx, b, revs, lp) {
						unavailable.Store(true)
					}
				}
			})
		}
		for _, lp := range batch {
			if unavailable.Load() {
				break
			}
			work <- lp
		}
		close(work)
		wg.Wait()
		if unavailable.Load() {
			b.pins.failed(c.now())
			return
		}
		b.pins.answered()
	}
}

// writeBackOne stores one local pin; false means the store did not answer.
func (c *Core) writeBackOne(ctx context.Context, b *backend, revs *roundRevisions, lp localPin) bool {
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	rev, err := revs.revision(rctx, lp.Revision)
	if err == nil && lp.RevisionID != "" && rev.ID != lp.RevisionID {
		err = switchyard.Errorf(switchyard.CodeNotFound, "revision %d is %s in the store, not the %s pinned: the store's history was rewound",
			lp.Revision, rev.ID, lp.RevisionID)
	}
	var stored switchyard.Snapshot
	if err == nil {
		stored, _, err = b.store.CreateSession(rctx, b.pins.snapshot(lp, rev))
	}
	if err != nil {
		if switchyard.AsError(err).Code == switchyard.CodeUnavailable {
			return false
		}
		c.logger.Error("write a session pinned during an outage; it is dropped", "session", lp.SessionID, "revision", lp.Revision, "err", err)
		b.pins.drop(lp.SessionID)
		return true
	}
	if stored.Revision != lp.Revision || stored.RevisionID != "" && stored.RevisionID != rev.ID {
		b.pins.divergences.Add(1)
		c.logger.Warn("a session pinned during an outage was already pinned elsewhere; serving the stored pin",
			"session", lp.SessionID, "local_revision", lp.Revision, "stored_revision", stored.Revision)
	}
	b.remember(stored)
	b.pins.drop(lp.SessionID)
	return true
}

// roundRevisions reads each revision a round of write-back needs once:
// the pins made during an outage that saw many changes name many
// revisions, each shared by many pins.
type roundRevisions struct {
	flags *flagSets
	mu    sync.Mutex
	read  map[int64]*switchyard.Revision
}

// revision returns revision n, read once a round.
func (r *roundRevisions) revision(ctx context.Context, n int64) (*switchyard.Revision, error) {
	r.mu.Lock()
	rev, ok := r.read[n]
	r.mu.Unlock()
	if ok {
		return rev, nil
	}
	rev, err := r.flags.revision(ctx, n)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.read[n] = rev
	r.mu.Unlock()
	return rev, nil
}

// runWriteBack runs writeBack every writeBackInterval until b stops, then
// saves the pins file once more, so it holds what was pinned last. The
// store is not called after b stops: it is about to be released.
func (c *Core) runWriteBack(b *backend) {
	defer close(b.writeBackDone)
	t := time.NewTicker(writeBackInterval)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			c.savePins(b)
			return
		case <-t.C:
			c.probe(context.Background(), b)
			c.writeBack(context.Background(), b)
			c.savePins(b)
		}
	}
}

// savePins rewrites b's pins file if it is behind.
func (c *Core) savePins(b *backend) {
	if c.cfg.StateDir == "" || !b.pins.dirtyNow() {
		return
	}
	if err := b.pins.save(c.cfg.StateDir, b.mode, b.snapshots.Values(), c.now()); err != nil {
		c.logger.Error("write the pins file", "err", err)
	}
}
