// Package storetest is the behavioural contract every store.Store passes.
// Each implementation's tests call Run, so the stores never drift apart.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// Harness is a fresh store under test and the hooks the contract needs.
type Harness struct {
	Store store.Store
	// Tamper changes the reason of audit entry seq behind the store's back,
	// as an attacker with write access would, without fixing the hashes.
	Tamper func(t *testing.T, seq int64, reason string)
}

// Run runs the contract suite; newHarness returns a store holding only the
// initial revision and an empty audit log.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"InitialRevision", testInitialRevision},
		{"ApplyMakesNewRevision", testApply},
		{"RevisionIdentity", testRevisionIdentity},
		{"StaleExpectedRevision", testStaleRevision},
		{"RefusedMutationStoresNothing", testRefusedMutation},
		{"AdminFreeze", testAdminFreeze},
		{"RejectRecordsAttempt", testReject},
		{"TextKeptValidAndBounded", testTextKept},
		{"RecordAppendsAppliedEntry", testRecord},
		{"SessionsFirstWriterWins", testSessions},
		{"ConcurrentSessionCreates", testConcurrentSessions},
		{"ExpiredSession", testExpiredSession},
		{"ConcurrentMutations", testConcurrentMutations},
		{"AuditPagination", testAuditPagination},
		{"AuditPageBytes", testAuditPageBytes},
		{"TamperDetected", testTamper},
		{"AuditListsWhatWasReturned", testAuditAsReturned},
		{"IdempotentApply", testIdempotentApply},
		{"RefusedChangeKeepsNoKey", testRefusedKeepsNoKey},
		{"IdempotentRecord", testIdempotentRecord},
		{"ConcurrentRetries", testConcurrentRetries},
		{"ChangeRequests", testChangeRequests},
		{"ClaimDueOnce", testClaimDue},
		{"IdempotentProposal", testIdempotentProposal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newHarness(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func attempt(actor string) store.Attempt {
	return store.Attempt{Actor: actor, Role: "admin", Reason: "contract test", Phrase: "TEST", RequestID: "req-" + actor}
}

func wantCode(t *testing.T, err error, code switchyard.Code) {
	t.Helper()
	if got := switchyard.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %s), want code %s", err, got, code)
	}
}

func testInitialRevision(t *testing.T, h Harness) {
	cur, err := h.Store.Current(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if cur.Number != 1 || cur.ActiveProfile != switchyard.ProfilePrimary {
		t.Fatalf("initial revision = %d with profile %q, want 1 with primary", cur.Number, cur.ActiveProfile)
	}
	if cur.System != (switchyard.SystemFlags{}) {
		t.Fatalf("initial system flags = %+v, want all off", cur.System)
	}
	if err := evaluator.Validate(cur); err != nil {
		t.Fatalf("initial revision is invalid: %v", err)
	}
	if _, err := h.Store.Revision(ctx(t), 99); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("Revision(99) error = %v, want NOT_FOUND", err)
	}
}

func testApply(t *testing.T, h Harness) {
	next, entry, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("alice"), Expected: 1,
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil {
		t.Fatal(err)
	}
	if next.Number != 2 || !next.System.ExamMode {
		t.Fatalf("next = revision %d exam %v, want 2 with exam mode on", next.Number, next.System.ExamMode)
	}
	if entry.Outcome != store.OutcomeApplied || entry.Revision != 2 || entry.Actor != "alice" ||
		entry.Action != "set_flag" || entry.Target != switchyard.ExamMode || entry.Seq != 1 {
		t.Fatalf("audit entry = %+v", entry)
	}
	if string(entry.Before) != `{"EXAM_MODE":false}` || string(entry.After) != `{"EXAM_MODE":true}` {
		t.Fatalf("audit before/after = %s / %s", entry.Before, entry.After)
	}
	cur, err := h.Store.Current(ctx(t))
	if err != nil || cur.Number != 2 || !cur.System.ExamMode {
		t.Fatalf("Current = %+v, %v; want revision 2 with exam mode on", cur, err)
	}
	old, err := h.Store.Revision(ctx(t), 1)
	if err != nil || old.System.ExamMode {
		t.Fatalf("revision 1 changed: %+v, %v", old, err)
	}
	override := "v0"
	if _, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("alice"),
		Mutation: switchyard.SetOverride("mastery", &override, nil)}); err != nil {
		t.Fatal(err)
	}
	cur, _ = h.Store.Current(ctx(t))
	if got := evaluator.Resolve(cur).Modules["mastery"]; got.Version != "v0" || got.Source != switchyard.SourceOverride {
		t.Fatalf("mastery after override = %+v", got)
	}
}

// testRevisionIdentity: every revision has an ID of its own, kept as it
// is read back by number or as the current one, and each names the one it
// was made from; a snapshot names the ID of the revision it pins.
func testRevisionIdentity(t *testing.T, h Harness) {
	first, err := h.Store.Current(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(first.ID) != 32 {
		t.Fatalf("revision 1 has ID %q, want 32 hex digits", first.ID)
	}
	ids := map[string]bool{first.ID: true}
	prev := first
	for i := range 3 {
		next, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"),
			Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, i%2 == 0)})
		if err != nil {
			t.Fatal(err)
		}
		if ids[next.ID] || next.Parent != prev.ID {
			t.Fatalf("revision %d: ID %q, parent %q; want a new ID and parent %q", next.Number, next.ID, next.Parent, prev.ID)
		}
		ids[next.ID] = true
		prev = next
	}
	cur, err := h.Store.Current(ctx(t))
	if err != nil || cur.ID != prev.ID || cur.Parent != prev.Parent {
		t.Fatalf("Current = %+v, %v; want revision %d as Apply returned it, ID %s", cur, err, prev.Number, prev.ID)
	}
	for n := int64(1); n <= prev.Number; n++ {
		r, err := h.Store.Revision(ctx(t), n)
		if err != nil || !ids[r.ID] || (n == 1) != (r.Parent == "") {
			t.Fatalf("Revision(%d) = ID %q parent %q, %v; want an ID Apply returned", n, r.ID, r.Parent, err)
		}
		delete(ids, r.ID)
	}
	snap := snapshot(t, h, "s-identity", time.Hour)
	if _, _, err := h.Store.CreateSession(ctx(t), snap); err != nil {
		t.Fatal(err)
	}
	read, err := h.Store.Session(ctx(t), "s-identity")
	if err != nil || read.Revision != prev.Number || read.RevisionID != prev.ID {
		t.Fatalf("Session = revision %d %q, %v; want %d %q", read.Revision, read.RevisionID, err, prev.Number, prev.ID)
	}
}

func testStaleRevision(t *testing.T, h Harness) {
	if _, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"),
		Mutation: switchyard.SetSystemFlag(switchyard.FreezeUpdates, true)}); err != nil {
		t.Fatal(err)
	}
	_, entry, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("b"), Expected: 1,
		Mutation: switchyard.SetActiveProfile(switchyard.ProfileFallback)})
	wantCode(t, err, switchyard.CodeRevisionConflict)
	if entry.Outcome != store.OutcomeRejected || entry.Revision != 2 {
		t.Fatalf("rejected entry = %+v", entry)
	}
	cur, _ := h.Store.Current(ctx(t))
	if cur.Number != 2 || cur.ActiveProfile != switchyard.ProfilePrimary {
		t.Fatalf("stale change was applied: revision %d profile %q", cur.Number, cur.ActiveProfile)
	}
}

func testRefusedMutation(t *testing.T, h Harness) {
	bad := "v9"
	_, entry, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"),
		Mutation: switchyard.SetOverride("mastery", &bad, nil)})
	wantCode(t, err, switchyard.CodeUnknownVersion)
	if entry.Outcome != store.OutcomeRejected || entry.Why == "" {
		t.Fatalf("entry = %+v, want rejected with why", entry)
	}
	_, _, err = h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"),
		Mutation: switchyard.SetOverride("nope", nil, new(bool))})
	wantCode(t, err, switchyard.CodeUnknownModule)
	cur, _ := h.Store.Current(ctx(t))
	if cur.Number != 1 || len(cur.Overrides) != 0 {
		t.Fatalf("refused change stored: revision %d overrides %v", cur.Number, cur.Overrides)
	}
}

func testAdminFreeze(t *testing.T, h Harness) {
	apply := func(m switchyard.Mutation) error {
		_, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"), Mutation: m})
		return err
	}
	if err := apply(switchyard.SetSystemFlag(switchyard.AdminFreeze, true)); err != nil {
		t.Fatal(err)
	}
	wantCode(t, apply(switchyard.SetSystemFlag(switchyard.ExamMode, true)), switchyard.CodeAdminFreezeActive)
	if err := apply(switchyard.SetSystemFlag(switchyard.AdminFreeze, false)); err != nil {
		t.Fatalf("lifting the admin freeze: %v", err)
	}
	if err := apply(switchyard.SetSystemFlag(switchyard.ExamMode, true)); err != nil {
		t.Fatal(err)
	}
	entries, _ := h.Store.Audit(ctx(t), store.AuditQuery{})
	if len(entries) != 4 || entries[2].Outcome != store.OutcomeRejected {
		t.Fatalf("audit = %d entries, want 4 with the frozen attempt rejected", len(entries))
	}
}

func testReject(t *testing.T, h Harness) {
	a := attempt("mallory")
	a.Action, a.Target, a.Role = "set_flag", switchyard.ExamMode, "viewer"
	entry, err := h.Store.Reject(ctx(t), a, switchyard.Errorf(switchyard.CodeForbidden, "viewers cannot change the runtime"))
	if err != nil {
		t.Fatal(err)
	}
	if entry.Outcome != store.OutcomeRejected || entry.Why != "FORBIDDEN: viewers cannot change the runtime" ||
		entry.Role != "viewer" || entry.Revision != 1 {
		t.Fatalf("entry = %+v", entry)
	}
	v, err := h.Store.VerifyAudit(ctx(t))
	if err != nil || !v.OK || v.Entries != 1 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

// testTextKept checks every store keeps the text of an attempt as
// switchyard.AuditText makes it (valid, escaped when it was not, cut to
// its field's limit), so a NUL or a megabyte in a refused request is
// recorded, and recorded alike in every mode.
func testTextKept(t *testing.T, h Harness) {
	a := attempt("mallory\x00")
	a.Action, a.Role = "set_flag", "viewer"
	a.Phrase = "ENABLE\x00EXAM MODE"
	a.Reason = "caf\xe9"
	a.Target = strings.Repeat("t", 1<<20)
	a.RequestID = "req-\xff"
	entry, err := h.Store.Reject(ctx(t), a, switchyard.Errorf(switchyard.CodeForbidden, "%s", strings.Repeat("\x00", 1<<10)))
	if err != nil {
		t.Fatal(err)
	}
	type kept struct{ Actor, Phrase, Reason, Target, RequestID, Why string }
	want := kept{
		Actor:     `"mallory\x00"`,
		Phrase:    `"ENABLE\x00EXAM MODE"`,
		Reason:    `"caf\xe9"`,
		Target:    switchyard.AuditText(a.Target, switchyard.MaxTargetLength),
		RequestID: `"req-\xff"`,
		Why:       switchyard.AuditText("FORBIDDEN: "+strings.Repeat("\x00", 1<<10), switchyard.MaxWhyLength),
	}
	if got := (kept{entry.Actor, entry.Phrase, entry.Reason, entry.Target, entry.RequestID, entry.Why}); got != want {
		t.Fatalf("recorded %+v, want %+v", got, want)
	}
	if !strings.HasSuffix(entry.Target, "[cut: 1048576 bytes]") {
		t.Fatalf("target recorded as %q, want it cut with its size", entry.Target)
	}
	listed, err := h.Store.Audit(ctx(t), store.AuditQuery{})
	if err != nil || len(listed) != 1 || listed[0].Hash != entry.Hash || listed[0].Phrase != want.Phrase {
		t.Fatalf("Audit = %+v, %v; want the entry as recorded", listed, err)
	}
	if v, err := h.Store.VerifyAudit(ctx(t)); err != nil || !v.OK || v.Entries != 1 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

func testRecord(t *testing.T, h Harness) {
	a := attempt("alice")
	a.Action, a.Target = "set_system_mode", "SYSTEM_MODE"
	entry, err := h.Store.Record(ctx(t), a, map[string]string{"mode": "demo"}, map[string]string{"mode": "production"})
	if err != nil {
		t.Fatal(err)
	}
	if entry.Outcome != store.OutcomeApplied || entry.Why != "" || entry.Revision != 1 || entry.Seq != 1 ||
		string(entry.Before) != `{"mode":"demo"}` || string(entry.After) != `{"mode":"production"}` {
		t.Fatalf("entry = %+v", entry)
	}
	cur, err := h.Store.Current(ctx(t))
	if err != nil || cur.Number != 1 {
		t.Fatalf("Current = %+v, %v; a recorded change must make no revision", cur, err)
	}
	entries, err := h.Store.Audit(ctx(t), store.AuditQuery{})
	if err != nil || len(entries) != 1 || entries[0].Hash != entry.Hash || string(entries[0].After) != string(entry.After) {
		t.Fatalf("audit = %+v, %v; want the recorded entry as returned", entries, err)
	}
	v, err := h.Store.VerifyAudit(ctx(t))
	if err != nil || !v.OK || v.Entries != 1 {
		t.Fatalf("verify = %+v, %v", v, err)
	}
}

func snapshot(t *testing.T, h Harness, id string, ttl time.Duration) switchyard.Snapshot {
	cur, err := h.Store.Current(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	return evaluator.NewSnapshot(id, "user-"+id, cur, time.Now(), ttl)
}

func testSessions(t *testing.T, h Harness) {
	first := snapshot(t, h, "s-1", time.Hour)
	got, created, err := h.Store.CreateSession(ctx(t), first)
	if err != nil || !created {
		t.Fatalf("create = %v, %v", created, err)
	}
	if _, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"),
		Mutation: switchyard.SetActiveProfile(switchyard.ProfileFallback)}); err != nil {
		t.Fatal(err)
	}
	second := snapshot(t, h, "s-1", time.Hour)
	again, created, err := h.Store.CreateSession(ctx(t), second)
	if err != nil || created {
		t.Fatalf("second create = %v, %v; want the existing snapshot", created, err)
	}
	if again.Revision != 1 || again.Profile != switchyard.ProfilePrimary || !again.CreatedAt.Equal(got.CreatedAt) {
		t.Fatalf("second create returned %+v, want the first snapshot", again)
	}
	read, err := h.Store.Session(ctx(t), "s-1")
	if err != nil || read.Revision != 1 || read.Modules["mastery"].Version != "v1" || read.UserID != "user-s-1" {
		t.Fatalf("Session = %+v, %v", read, err)
	}
	if _, err := h.Store.Session(ctx(t), "missing"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("missing session error = %v, want NOT_FOUND", err)
	}
}

func testConcurrentSessions(t *testing.T, h Harness) {
	const n = 32
	base := snapshot(t, h, "race", time.Hour)
	results := make([]switchyard.Snapshot, n)
	createdCount := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := base
			s.UserID = fmt.Sprintf("u%d", i)
			got, created, err := h.Store.CreateSession(ctx(t), s)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			results[i] = got
			if created {
				createdCount++
			}
		})
	}
	wg.Wait()
	if createdCount != 1 {
		t.Fatalf("%d creates reported created, want exactly 1", createdCount)
	}
	for _, r := range results[1:] {
		if r.UserID != results[0].UserID {
			t.Fatalf("creates returned different snapshots: %q and %q", r.UserID, results[0].UserID)
		}
	}
}

func testExpiredSession(t *testing.T, h Harness) {
	s := snapshot(t, h, "old", time.Hour)
	s.CreatedAt = s.CreatedAt.Add(-2 * time.Hour)
	s.ExpiresAt = s.CreatedAt.Add(time.Hour)
	if _, _, err := h.Store.CreateSession(ctx(t), s); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.Session(ctx(t), "old"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("expired session error = %v, want NOT_FOUND", err)
	}
	fresh := snapshot(t, h, "old", time.Hour)
	got, created, err := h.Store.CreateSession(ctx(t), fresh)
	if err != nil || !created || !got.ExpiresAt.After(time.Now()) {
		t.Fatalf("recreating an expired session = %+v, %v, %v", got, created, err)
	}
}

func testConcurrentMutations(t *testing.T, h Harness) {
	const workers, each = 64, 3
	var applied, rejected sync.Map
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				cur, err := h.Store.Current(ctx(t))
				if err != nil {
					t.Error(err)
					return
				}
				on := (w+i)%2 == 0
				next, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt(fmt.Sprint(w)),
					Expected: cur.Number, Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, on)})
				switch {
				case err == nil:
					if _, dup := applied.LoadOrStore(next.Number, w); dup {
						t.Errorf("revision %d created twice", next.Number)
					}
				case switchyard.ErrorCode(err) == switchyard.CodeRevisionConflict:
					rejected.Store(fmt.Sprint(w, i), true)
				default:
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	nApplied, nRejected := count(&applied), count(&rejected)
	if nApplied+nRejected != workers*each || nApplied == 0 {
		t.Fatalf("applied %d + rejected %d, want %d attempts with some applied", nApplied, nRejected, workers*each)
	}
	cur, _ := h.Store.Current(ctx(t))
	if cur.Number != int64(nApplied)+1 {
		t.Fatalf("current revision %d, want %d: revisions are not contiguous", cur.Number, nApplied+1)
	}
	for n := int64(2); n <= cur.Number; n++ {
		if _, ok := applied.Load(n); !ok {
			t.Fatalf("revision %d missing", n)
		}
	}
	v, err := h.Store.VerifyAudit(ctx(t))
	if err != nil || !v.OK || v.Entries != int64(workers*each) {
		t.Fatalf("verify = %+v, %v; want ok with %d entries", v, err, workers*each)
	}
}

func count(m *sync.Map) int {
	n := 0
	m.Range(func(_, _ any) bool { n++; return true })
	return n
}

func testAuditPagination(t *testing.T, h Harness) {
	for i := range 5 {
		if _, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"),
			Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, i%2 == 0)}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := h.Store.Audit(ctx(t), store.AuditQuery{Limit: 2})
	if err != nil || len(page) != 2 || page[0].Seq != 5 || page[1].Seq != 4 {
		t.Fatalf("first page = %v, %v; want seq 5, 4", seqs(page), err)
	}
	page, err = h.Store.Audit(ctx(t), store.AuditQuery{Limit: 10, Before: 4})
	if err != nil || len(page) != 3 || page[0].Seq != 3 || page[2].Seq != 1 {
		t.Fatalf("page before 4 = %v, %v; want seq 3, 2, 1", seqs(page), err)
	}
	if page[2].PrevHash != "" || page[1].PrevHash != page[2].Hash {
		t.Fatalf("chain links wrong: %+v", page)
	}
}

// testAuditPageBytes checks a page ends before the entry that would take
// it past MaxBytes, but always holds one entry, so paging goes on.
func testAuditPageBytes(t *testing.T, h Harness) {
	var size int
	for i := range 5 {
		a := attempt("a")
		a.Reason = strings.Repeat("r", 500)
		e, err := h.Store.Reject(ctx(t), a, fmt.Errorf("refusal %d", i))
		if err != nil {
			t.Fatal(err)
		}
		size = e.Size()
	}
	tests := []struct {
		q    store.AuditQuery
		want []int64
	}{
		{store.AuditQuery{MaxBytes: 2*size + size/2}, []int64{5, 4}},
		{store.AuditQuery{MaxBytes: 2 * size}, []int64{5, 4}},
		{store.AuditQuery{MaxBytes: 2*size - 1}, []int64{5}},
		{store.AuditQuery{MaxBytes: 1}, []int64{5}},
		{store.AuditQuery{MaxBytes: 1, Before: 5}, []int64{4}},
		{store.AuditQuery{MaxBytes: 3 * size, Before: 3}, []int64{2, 1}},
		{store.AuditQuery{MaxBytes: 10 * size, Limit: 3}, []int64{5, 4, 3}},
		{store.AuditQuery{}, []int64{5, 4, 3, 2, 1}},
	}
	for _, tt := range tests {
		page, err := h.Store.Audit(ctx(t), tt.q)
		if err != nil || !slices.Equal(seqs(page), tt.want) {
			t.Fatalf("Audit(%+v) = %v, %v; want %v", tt.q, seqs(page), err, tt.want)
		}
	}
}

func seqs(es []store.AuditEntry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.Seq
	}
	return out
}

// testAuditAsReturned checks the entries Apply and Reject return are
// exactly those the log keeps, each chained to the one before.
func testAuditAsReturned(t *testing.T, h Harness) {
	var returned []store.AuditEntry
	_, e, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"), Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	if err != nil {
		t.Fatal(err)
	}
	returned = append(returned, e)
	_, e, err = h.Store.Apply(ctx(t), store.Change{Attempt: attempt("b"), Expected: 1, Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, false)})
	wantCode(t, err, switchyard.CodeRevisionConflict)
	returned = append(returned, e)
	e, err = h.Store.Reject(ctx(t), attempt("c"), switchyard.Errorf(switchyard.CodePhraseMismatch, "say the phrase"))
	if err != nil {
		t.Fatal(err)
	}
	returned = append(returned, e)
	listed, err := h.Store.Audit(ctx(t), store.AuditQuery{})
	if err != nil || len(listed) != len(returned) {
		t.Fatalf("Audit = %d entries, %v; want %d", len(listed), err, len(returned))
	}
	prev := ""
	for i, r := range returned {
		l := listed[len(listed)-1-i]
		rj, _ := json.Marshal(r)
		lj, _ := json.Marshal(l)
		if string(rj) != string(lj) {
			t.Fatalf("entry %d returned as %s but listed as %s", i+1, rj, lj)
		}
		if r.Seq != int64(i+1) || r.PrevHash != prev || store.ChainHash(prev, r) != r.Hash {
			t.Fatalf("entry %d is not chained: %+v", i+1, r)
		}
		prev = r.Hash
	}
}

func testTamper(t *testing.T, h Harness) {
	for range 4 {
		if _, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: attempt("a"),
			Mutation: switchyard.SetSystemFlag(switchyard.FreezeUpdates, true)}); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := h.Store.VerifyAudit(ctx(t)); err != nil || !v.OK || v.Entries != 4 || v.HeadSeq != 4 {
		t.Fatalf("verify before tampering = %+v, %v", v, err)
	}
	h.Tamper(t, 3, "nothing to see here")
	v, err := h.Store.VerifyAudit(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || v.FirstBad != 3 {
		t.Fatalf("verify after tampering = %+v, want not ok naming entry 3", v)
	}
}

// keyed returns attempt(actor) sent with an idempotency key and the hash
// of the request it came with.
func keyed(actor, key, hash string) store.Attempt {
	a := attempt(actor)
	a.IdempotencyKey, a.RequestHash = key, hash
	return a
}

// auditLength returns how many entries the audit log holds.
func auditLength(t *testing.T, h Harness) int64 {
	t.Helper()
	v, err := h.Store.VerifyAudit(ctx(t))
	if err != nil || !v.OK {
		t.Fatalf("verify = %+v, %v", v, err)
	}
	return v.Entries
}

// testIdempotentApply checks a retry with the key of an applied change
// answers that change and applies nothing, even when the revision it was
// based on is stale by now, and the key with another request is refused.
func testIdempotentApply(t *testing.T, h Harness) {
	change := store.Change{Attempt: keyed("alice", "key-1", "hash-1"), Expected: 1,
		Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)}
	first, entry, err := h.Store.Apply(ctx(t), change)
	if err != nil || first.Number != 2 {
		t.Fatalf("first apply = %v, %v; want revision 2", first, err)
	}
	retry := change
	retry.RequestID = "req-retry"
	again, replayed, err := h.Store.Apply(ctx(t), retry)
	if err != nil {
		t.Fatalf("retry = %v; want the first outcome", err)
	}
	if again.Number != 2 || !again.System.ExamMode || replayed.Seq != entry.Seq || replayed.Hash != entry.Hash ||
		replayed.RequestID != "req-alice" {
		t.Fatalf("retry answered revision %d and entry %+v; want revision 2 and entry %d as first recorded",
			again.Number, replayed, entry.Seq)
	}
	if n := auditLength(t, h); n != 1 {
		t.Fatalf("audit log holds %d entries after a retry, want 1", n)
	}
	got, err := h.Store.Keyed(ctx(t), "key-1")
	if err != nil || got.RequestHash != "hash-1" || got.Entry.Seq != entry.Seq || got.Entry.Revision != 2 {
		t.Fatalf("Keyed = %+v, %v; want the applied entry with its request hash", got, err)
	}
	if _, err := h.Store.Keyed(ctx(t), "key-unknown"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("Keyed of an unknown key = %v, want NOT_FOUND", err)
	}

	for _, other := range []store.Change{
		{Attempt: keyed("alice", "key-1", "hash-2"), Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)},
		{Attempt: keyed("alice", "key-1", "hash-1"), Mutation: switchyard.SetSystemFlag(switchyard.FreezeUpdates, true)},
	} {
		_, rejected, err := h.Store.Apply(ctx(t), other)
		wantCode(t, err, switchyard.CodeIdempotencyKeyReused)
		if rejected.Outcome != store.OutcomeRejected || rejected.Revision != 2 {
			t.Fatalf("key reuse recorded as %+v, want a rejected entry at revision 2", rejected)
		}
	}
	cur, err := h.Store.Current(ctx(t))
	if err != nil || cur.Number != 2 || cur.System.FreezeUpdates {
		t.Fatalf("Current = %+v, %v; a refused key must apply nothing", cur, err)
	}
	if n := auditLength(t, h); n != 3 {
		t.Fatalf("audit log holds %d entries, want the change and two refusals", n)
	}
}

// testRefusedKeepsNoKey checks a refused change does not bind its key: the
// same key carries the corrected request.
func testRefusedKeepsNoKey(t *testing.T, h Harness) {
	bad := "v9"
	_, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: keyed("a", "key-r", "hash-bad"),
		Mutation: switchyard.SetOverride("mastery", &bad, nil)})
	wantCode(t, err, switchyard.CodeUnknownVersion)
	if _, err := h.Store.Keyed(ctx(t), "key-r"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("Keyed after a refusal = %v, want NOT_FOUND", err)
	}
	good := "v0"
	next, _, err := h.Store.Apply(ctx(t), store.Change{Attempt: keyed("a", "key-r", "hash-good"),
		Mutation: switchyard.SetOverride("mastery", &good, nil)})
	if err != nil || next.Number != 2 {
		t.Fatalf("the corrected change with the same key = %v, %v; want revision 2", next, err)
	}
}

// testIdempotentRecord checks Record keeps keys as Apply does, and that
// the two share them.
func testIdempotentRecord(t *testing.T, h Harness) {
	a := keyed("alice", "key-mode", "hash-mode")
	a.Action, a.Target = "set_system_mode", "SYSTEM_MODE"
	before, after := map[string]string{"mode": "demo"}, map[string]string{"mode": "production"}
	entry, err := h.Store.Record(ctx(t), a, before, after)
	if err != nil {
		t.Fatal(err)
	}
	retry := a
	retry.RequestID = "req-retry"
	again, err := h.Store.Record(ctx(t), retry, before, after)
	if err != nil || again.Seq != entry.Seq || again.Hash != entry.Hash {
		t.Fatalf("retried record = %+v, %v; want entry %d", again, err, entry.Seq)
	}
	other := a
	other.RequestHash = "hash-other"
	_, err = h.Store.Record(ctx(t), other, before, after)
	wantCode(t, err, switchyard.CodeIdempotencyKeyReused)
	_, _, err = h.Store.Apply(ctx(t), store.Change{Attempt: a, Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
	wantCode(t, err, switchyard.CodeIdempotencyKeyReused)
	// The record and the refused change: a refused Record appends nothing.
	if n := auditLength(t, h); n != 2 {
		t.Fatalf("audit log holds %d entries, want the record and the refused change", n)
	}
	got, err := h.Store.Keyed(ctx(t), "key-mode")
	if err != nil || got.Entry.Seq != entry.Seq || string(got.Entry.After) != `{"mode":"production"}` {
		t.Fatalf("Keyed = %+v, %v; want the recorded entry", got, err)
	}
}

// testConcurrentRetries sends one keyed change many times at once, as a
// client retrying on its own timeouts might: it applies exactly once and
// every attempt answers that one change.
func testConcurrentRetries(t *testing.T, h Harness) {
	const n = 16
	seqs := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a := keyed("alice", "key-race", "hash-race")
			a.RequestID = fmt.Sprintf("req-%d", i)
			next, e, err := h.Store.Apply(ctx(t), store.Change{Attempt: a,
				Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, true)})
			if err != nil || next.Number != 2 {
				t.Errorf("attempt %d = %v, %v; want revision 2", i, next, err)
				return
			}
			seqs[i] = e.Seq
		})
	}
	wg.Wait()
	for i, seq := range seqs {
		if seq != 1 {
			t.Fatalf("attempt %d answered audit entry %d, want 1", i, seq)
		}
	}
	cur, err := h.Store.Current(ctx(t))
	if err != nil || cur.Number != 2 {
		t.Fatalf("Current = %+v, %v; want revision 2", cur, err)
	}
	if n := auditLength(t, h); n != 1 {
		t.Fatalf("audit log holds %d entries, want 1", n)
	}
}

// ServiceURL returns the URL of a service the test needs from the
// environment variable env. Unset, the test is skipped with a message
// naming the variable, or fails when SWITCHYARD_REQUIRE_SERVICES=1 (as in
// CI), so a missing service never passes silently there.
func ServiceURL(t testing.TB, env string) string {
	t.Helper()
	url := os.Getenv(env)
	if url != "" {
		return url
	}
	if os.Getenv("SWITCHYARD_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s is not set and SWITCHYARD_REQUIRE_SERVICES=1", env)
	}
	t.Skipf("set %s to run this test against a real service", env)
	return ""
}
