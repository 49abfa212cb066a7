package memory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		s := memory.NewDemo()
		return storetest.Harness{
			Store: s,
			Tamper: func(t *testing.T, seq int64, reason string) {
				s.Tamper(seq, func(e *store.AuditEntry) { e.Reason = reason })
			},
		}
	})
}

// TestKeysExpire checks an idempotency key is kept for store.KeyTTL and
// swept by a later keyed change, after which the key names a new change.
func TestKeysExpire(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := memory.NewDemo(memory.WithClock(func() time.Time { return now }))
	ctx := context.Background()
	apply := func(key string, on bool) (*switchyard.Revision, error) {
		next, _, err := s.Apply(ctx, store.Change{
			Attempt:  store.Attempt{Actor: "alice", IdempotencyKey: key, RequestHash: fmt.Sprint(on)},
			Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, on)})
		return next, err
	}
	if _, err := apply("k", true); err != nil {
		t.Fatal(err)
	}
	now = now.Add(store.KeyTTL - time.Second)
	if next, err := apply("k", true); err != nil || next.Number != 2 {
		t.Fatalf("retry within the TTL = %v, %v; want revision 2 again", next, err)
	}
	now = now.Add(2 * time.Second)
	if _, err := apply("other", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Keyed(ctx, "k"); switchyard.ErrorCode(err) != switchyard.CodeNotFound {
		t.Fatalf("Keyed past the TTL = %v, want NOT_FOUND: swept", err)
	}
	if next, err := apply("k", true); err != nil || next.Number != 4 {
		t.Fatalf("the swept key with a new change = %v, %v; want revision 4", next, err)
	}
}

// TestMaxSessions checks a store bounded to n sessions keeps the n newest:
// creating more drops the oldest created, and creating a session that
// exists drops nothing.
func TestMaxSessions(t *testing.T) {
	const max, extra = 5, 3
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	s := memory.NewDemo(memory.WithClock(func() time.Time { return now }), memory.WithMaxSessions(max))
	ctx := context.Background()
	cur, err := s.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	create := func(id string) bool {
		t.Helper()
		_, created, err := s.CreateSession(ctx, evaluator.NewSnapshot(id, "", cur, now, time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	for i := range max + extra {
		if !create(fmt.Sprintf("s-%d", i)) {
			t.Fatalf("s-%d was not created", i)
		}
	}
	for i := range max + extra {
		_, err := s.Session(ctx, fmt.Sprintf("s-%d", i))
		if gone := i < extra; gone != (switchyard.ErrorCode(err) == switchyard.CodeNotFound) {
			t.Errorf("s-%d: Session error = %v; want the %d oldest gone and the %d newest kept", i, err, extra, max)
		}
	}
	if create(fmt.Sprintf("s-%d", max+extra-1)) {
		t.Fatal("creating a kept session created it again")
	}
	if _, err := s.Session(ctx, fmt.Sprintf("s-%d", extra)); err != nil {
		t.Fatalf("creating a kept session dropped the oldest: %v", err)
	}
}
