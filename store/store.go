// Package store defines the contract every Switchyard store keeps: the
// current revision, audited changes, session snapshots and the audit log.
// Implementations live in sub-packages, one per technology.
package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// Store is the source of truth for the runtime: every role below in one.
// Every implementation passes the same contract suite (store/storetest), so
// they never drift. Consumers that need only part of it take the role they
// use, so a fake for their tests implements that role alone.
type Store interface {
	Revisions
	Sessions
	Changes
	ChangeRequests
	AuditLog
}

// Revisions reads the runtime state: what evaluations are served from.
type Revisions interface {
	// Current returns the newest revision.
	Current(ctx context.Context) (*switchyard.Revision, error)
	// Revision returns revision number n of the history the store holds
	// now, or a NOT_FOUND error. After the history was rewound (a
	// database restored from an earlier backup) n may name another
	// revision than it did: callers holding a revision compare IDs, and
	// whatever a store caches it must never answer with a revision of a
	// history it no longer holds.
	Revision(ctx context.Context, n int64) (*switchyard.Revision, error)
}

// Sessions keeps the snapshots that pin a session to the revision it
// started on, so a user's flags do not change mid-session.
type Sessions interface {
	// CreateSession stores the snapshot unless one exists for its session
	// ID, and returns the stored one: the first writer wins. created says
	// whether this call stored it.
	CreateSession(ctx context.Context, s switchyard.Snapshot) (stored switchyard.Snapshot, created bool, err error)
	// Session returns the snapshot of a live session, or NOT_FOUND.
	Session(ctx context.Context, id string) (switchyard.Snapshot, error)
}

// Changes is the audited write path: every attempt to change the runtime,
// applied or refused, leaves exactly one audit entry.
type Changes interface {
	// Apply applies a change as one atomic step: check the expected
	// revision, apply the mutation to the current revision, store the next
	// revision and append one audit entry. When the change is refused (a
	// stale expected revision, a mutation error) nothing is stored but a
	// rejected audit entry, and the refusal is returned.
	//
	// A change with an idempotency key applies at most once: when its key
	// already names an applied change, Apply stores nothing and returns
	// that change's revision and audit entry, or, when the key was used
	// with another request, an IDEMPOTENCY_KEY_REUSED refusal (recorded
	// like any refusal). An applied change keeps its key for at least
	// KeyTTL; a refused one keeps none.
	//
	// UNAVAILABLE means the change is not applied. A store that cannot
	// tell, because the database stopped answering after the change was
	// sent and still does not say whether it committed, returns
	// OUTCOME_UNKNOWN instead.
	Apply(ctx context.Context, c Change) (*switchyard.Revision, AuditEntry, error)
	// Reject records an attempt refused before it reached the store (a
	// missing role, a wrong phrase), so every attempt is in the audit log.
	Reject(ctx context.Context, a Attempt, why error) (AuditEntry, error)
	// Record appends an applied audit entry for a change made outside the
	// revisions (the system mode, which belongs to the process, not to the
	// runtime state), with what it changed from and to. It stores no
	// revision; the entry names the current one. Its idempotency key and
	// its errors mean what they mean for Apply, except that a refusal
	// appends nothing: the caller records it.
	Record(ctx context.Context, a Attempt, before, after any) (AuditEntry, error)
	// Keyed returns the applied change an idempotency key names, or
	// NOT_FOUND when no kept change has that key.
	Keyed(ctx context.Context, key string) (Keyed, error)
}

// AuditLog reads the append-only, hash-chained audit log that Changes
// writes.
type AuditLog interface {
	// Audit lists audit entries newest first, one page of q filled
	// through an AuditPage.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// VerifyAudit walks the audit hash chain from the start.
	VerifyAudit(ctx context.Context) (Verification, error)
}

// Notifier is a store that learns of revisions committed elsewhere (by
// another replica) and says so, so the caller can refresh what it serves at
// once instead of when its own cache expires.
type Notifier interface {
	// OnChange registers fn to hear every new current revision the store
	// learns of. Delivery is asynchronous: fn runs on a goroutine of the
	// store's, never inside the call that made the revision and never
	// while the store holds a lock, so fn may be slow and may call back
	// into the store. Within one history the numbers fn hears only go up
	// and no revision is repeated; when the store finds its history was
	// rewound (a database restored from an earlier backup), fn hears the
	// current revision of the history it holds now, whatever its number. A
	// listener still busy when several revisions arrive hears only the
	// newest of them, which is all a listener refreshing its state needs.
	OnChange(fn func(rev *switchyard.Revision))
}

// HealthReporter is a store that keeps answering while part of it is down
// (a cache whose Redis is unreachable reads the database directly), so its
// answers alone do not show the degradation; readiness asks it.
type HealthReporter interface {
	// Degraded reports whether the store runs degraded and why, in words
	// for an operator.
	Degraded() (reason string, degraded bool)
}

// Identity names the installation a store holds, so that what a replica
// keeps of one (its last-known-good file) is never served for another.
type Identity struct {
	// Address is where the store is configured to be, known without
	// reaching it: for Postgres the hosts, ports, database and search_path
	// of its URL, without user or password.
	Address string `json:"address,omitempty"`
	// Installation is what the store says it is once it has answered: for
	// Postgres the cluster's system identifier, the database and the
	// schema, which no other installation shares, whatever address it is
	// reached at. Empty until the store has answered.
	Installation string `json:"installation,omitempty"`
}

// Identifier is a store that can say which installation it holds, without
// I/O. A store that is not one (the in-memory fixtures) has the zero
// Identity: nothing outlives its process to be told apart.
type Identifier interface {
	Identity() Identity
}

// Attempt says who tried a change and why, as recorded in the audit log.
type Attempt struct {
	Actor     string
	Role      string
	Action    string
	Target    string
	Reason    string
	Phrase    string
	RequestID string
	// IdempotencyKey names the request, so a retry of it applies nothing
	// twice; empty when the request has none. It is kept beside the audit
	// entry of the change it applied, not in the entry.
	IdempotencyKey string
	// RequestHash identifies the request the key came with (its route,
	// revision and body), so the key sent with another request is refused.
	RequestHash string
}

// KeyTTL is how long a store keeps an idempotency key after the change it
// names was applied: for at least this long a retry with the key is
// answered with that change. Older keys are swept, and a key swept may
// name a new change.
const KeyTTL = 24 * time.Hour

// Keyed is an applied change as its idempotency key names it.
type Keyed struct {
	// RequestHash is the request hash of the attempt that applied it.
	RequestHash string
	Entry       AuditEntry
}

// Answers returns nil when the change k names is the one attempt a asks
// for again (the same request, so its outcome answers the retry), and the
// IDEMPOTENCY_KEY_REUSED refusal otherwise. Every store decides through
// it.
func (k Keyed) Answers(a Attempt) error {
	if k.RequestHash == a.RequestHash && k.Entry.Action == a.Action && k.Entry.Target == a.Target {
		return nil
	}
	return switchyard.Errorf(switchyard.CodeIdempotencyKeyReused,
		"Idempotency-Key %q already names another request (%s of %s, audit entry %d); send a new request with a new key",
		a.IdempotencyKey, k.Entry.Action, k.Entry.Target, k.Entry.Seq).With("audit_seq", k.Entry.Seq)
}

// Change is an attempt with the mutation it asks for.
type Change struct {
	Attempt
	// Expected is the revision the caller based the change on; 0 means any.
	Expected int64
	Mutation switchyard.Mutation
}

// Next returns the revision a change makes of cur, the current revision at
// now, or the refusal: REVISION_CONFLICT when the change was based on
// another revision, whatever the mutation refuses, and a next revision that
// is not valid (evaluator.ValidateChange: a flag it changes that does not
// compile). Every store's Apply decides through it, inside its own atomic
// step, so they refuse alike and none stores an invalid revision. Only what
// the change touches is compiled, so a toggle costs the same however many
// flags are stored; a large import, which compiles every flag it brings,
// stops with an UNAVAILABLE error when ctx ends.
func Next(ctx context.Context, cur *switchyard.Revision, c Change, now time.Time) (*switchyard.Revision, error) {
	if err := BasedOn(cur, c.Expected); err != nil {
		return nil, err
	}
	next, err := c.Mutation.Apply(cur, now)
	if err != nil {
		return nil, err
	}
	if err := evaluator.ValidateChange(ctx, cur, next); err != nil {
		return nil, err
	}
	return next, nil
}

// BasedOn returns the REVISION_CONFLICT refusal of a change based on
// revision expected (0: any) when cur is the current revision and is
// another. Next asks it for every change a store applies; the mode toggle,
// which makes no revision, asks it as it is admitted.
func BasedOn(cur *switchyard.Revision, expected int64) error {
	if expected != 0 && expected != cur.Number {
		return switchyard.Errorf(switchyard.CodeRevisionConflict,
			"the change was based on revision %d but the current revision is %d", expected, cur.Number).
			With("current_revision", cur.Number)
	}
	return nil
}

// The outcomes of an audited attempt.
const (
	OutcomeApplied  = "applied"
	OutcomeRejected = "rejected"
)

// AuditEntry is one row of the append-only, hash-chained audit log.
type AuditEntry struct {
	Seq       int64           `json:"seq"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`
	Role      string          `json:"role"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Reason    string          `json:"reason"`
	Phrase    string          `json:"phrase"`
	RequestID string          `json:"request_id"`
	Outcome   string          `json:"outcome"`
	Why       string          `json:"why,omitempty"`
	Revision  int64           `json:"revision"`
	Before    json.RawMessage `json:"before,omitempty"`
	After     json.RawMessage `json:"after,omitempty"`
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
}

// AuditQuery pages through the audit log: at most Limit entries with a
// sequence number below Before (0: from the newest), weighing at most
// MaxBytes together (AuditPage says how a page ends).
type AuditQuery struct {
	Limit    int
	Before   int64
	MaxBytes int
}

// Verification is the result of walking the audit chain.
type Verification struct {
	OK      bool  `json:"ok"`
	Entries int64 `json:"entries"`
	// FirstBad is the sequence number of the first entry whose hash does not
	// match its content and predecessor; 0 when OK.
	FirstBad int64  `json:"first_bad_seq,omitempty"`
	Problem  string `json:"problem,omitempty"`
	// Head is the newest entry's sequence number and hash.
	HeadSeq  int64  `json:"head_seq"`
	HeadHash string `json:"head_hash,omitempty"`
}
