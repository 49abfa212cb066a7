package control

import (
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// Observer hears what the core does, for metrics: switchyard serve gives
// it the telemetry package's, so the core counts at the source without
// knowing how the counts are exported. Evaluated runs on every evaluation
// and must neither block nor allocate; the others run once per change or
// revision.
type Observer interface {
	// Evaluated hears of one flag evaluated: its key as asked, the reason
	// and error code of the result, and whether a session's pin served it.
	Evaluated(key string, reason evaluator.Reason, code evaluator.ResolutionError, pinned bool)
	// Installed hears of a revision installed at installedAt in place of
	// an older one read from the store, from this replica's change or
	// another's: its CreatedAt is its commit, so the difference is how long
	// the change took to arrive. The first revision a replica serves
	// (committed before it started, perhaps long before) is not heard of.
	Installed(rev *switchyard.Revision, installedAt time.Time)
	// Changed hears of a change's outcome: code is empty when it was
	// applied, else the code of its refusal, or OUTCOME_UNKNOWN when the
	// store could not say whether it was applied.
	Changed(action string, code switchyard.Code)
	// Audited hears of an entry appended to the audit log, whose outcome
	// is store.OutcomeApplied or store.OutcomeRejected.
	Audited(outcome string)
}

// ignore is the Observer of a core given none.
type ignore struct{}

func (ignore) Evaluated(string, evaluator.Reason, evaluator.ResolutionError, bool) {}
func (ignore) Installed(*switchyard.Revision, time.Time)                           {}
func (ignore) Changed(string, switchyard.Code)                                     {}
func (ignore) Audited(string)                                                      {}

// What evaluations are served from, as Serving.Source names it.
const (
	// SourceStore: the store's current revision, as last read.
	SourceStore = "store"
	// SourceLastKnown: the last revision read, while the store does not
	// answer.
	SourceLastKnown = "last_known"
	// SourceStateFile: the last-known-good file's revision, since a start
	// with the store down.
	SourceStateFile = "state_file"
	// SourceFallback: the conservative fallback built into the binary.
	SourceFallback = "fallback"
)

// Serving is what a replica serves now, as a metrics scrape reads it.
type Serving struct {
	Mode string
	// Revision is the revision evaluations are served from, installed at
	// InstalledAt; 0 for the conservative fallback.
	Revision    int64
	InstalledAt time.Time
	// Source is SourceStore unless the values served are a stand-in for
	// the store's.
	Source string
	// System is the served revision's system flags.
	System switchyard.SystemFlags
	// PinsWaiting counts sessions pinned here during an outage and not
	// yet written to the store.
	PinsWaiting int
}

// Serving says what this replica serves now. It reads what is in memory
// and asks no store.
func (c *Core) Serving() Serving {
	b := c.acquire()
	defer b.leave()
	cur := b.flags.cur.Load()
	s := Serving{Mode: b.mode, Revision: cur.rev.Number, InstalledAt: cur.installed, Source: SourceStore,
		System: cur.rev.System, PinsWaiting: b.pins.waiting()}
	switch {
	case cur.fallback:
		s.Source, s.Revision = SourceFallback, 0
	case cur.stale:
		s.Source = SourceStateFile
	case b.flags.lastStoreError() != nil:
		s.Source = SourceLastKnown
	}
	return s
}
