package control

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// A change whose text is not valid, or longer than the audit log keeps, is
// refused naming the field, and the refusal is recorded with the text
// escaped and cut, so the record of a refusal cannot be kept out of the
// log nor made large.
func TestAdmissionRefusesBadText(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	tests := []struct {
		name   string
		change func(*Change)
		code   switchyard.Code
		field  string
		// recorded returns the field as the log must keep it and as it
		// kept it.
		recorded func(store.AuditEntry) (want, got string)
	}{
		{"NUL in the reason", func(c *Change) { c.Reason = "exam\x00" }, switchyard.CodeInvalidText, "reason",
			func(e store.AuditEntry) (string, string) { return `"exam\x00"`, e.Reason }},
		{"invalid UTF-8 in the phrase", func(c *Change) { c.Phrase = "ENABLE EXAM MODE\xff" }, switchyard.CodeInvalidText, "phrase",
			func(e store.AuditEntry) (string, string) { return `"ENABLE EXAM MODE\xff"`, e.Phrase }},
		{"NUL in the target", func(c *Change) { c.Target = "module:\x00" }, switchyard.CodeInvalidText, "target",
			func(e store.AuditEntry) (string, string) { return `"module:\x00"`, e.Target }},
		{"a megabyte of phrase", func(c *Change) { c.Phrase = long }, switchyard.CodeInvalidRequest, "phrase",
			func(e store.AuditEntry) (string, string) {
				return switchyard.AuditText(long, switchyard.MaxPhraseLength), e.Phrase
			}},
		{"a megabyte of target", func(c *Change) { c.Target = long }, switchyard.CodeInvalidRequest, "target",
			func(e store.AuditEntry) (string, string) {
				return switchyard.AuditText(long, switchyard.MaxTargetLength), e.Target
			}},
		{"a megabyte of reason", func(c *Change) { c.Reason = long }, switchyard.CodeReasonRequired, "reason",
			func(e store.AuditEntry) (string, string) {
				return switchyard.AuditText(long, switchyard.MaxReasonLength), e.Reason
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, st := newCore(t)
			ch := examMode(true)
			tt.change(&ch)
			_, err := c.Apply(context.Background(), ch)
			e := switchyard.AsError(err)
			if err == nil || e.Code != tt.code || e.Fields["field"] != tt.field {
				t.Fatalf("Apply = %v (fields %v), want %s naming %q", err, e.Fields, tt.code, tt.field)
			}
			entries, err := st.Audit(context.Background(), store.AuditQuery{})
			if err != nil || len(entries) != 1 || entries[0].Outcome != store.OutcomeRejected {
				t.Fatalf("audit = %+v, %v; want the refusal", entries, err)
			}
			if want, got := tt.recorded(entries[0]); got != want {
				t.Fatalf("recorded %q, want %q", got, want)
			}
			if size := entries[0].Size(); size > 8<<10 {
				t.Fatalf("the refusal weighs %d bytes in the log", size)
			}
		})
	}
}

// Each sender may be refused RefusalBurst times, then once more every
// RefusalInterval; past that its requests are answered RATE_LIMITED with
// the wait, counted, and not recorded, however many arrive at once. An
// operator's allowance is its own.
func TestRefusalsAreRateLimited(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	st := memory.NewDemo()
	c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clock}, st)
	viewer := examMode(true)
	viewer.Actor, viewer.Role = "viewer:mallory", switchyard.RoleViewer
	auditLength := func() int64 {
		t.Helper()
		v, err := st.VerifyAudit(context.Background())
		if err != nil || !v.OK {
			t.Fatalf("verify = %+v, %v", v, err)
		}
		return v.Entries
	}

	// A flood at once: exactly the allowance is refused and recorded.
	codes := make(chan switchyard.Code, 100)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			_, err := c.Apply(context.Background(), viewer)
			codes <- switchyard.ErrorCode(err)
		})
	}
	wg.Wait()
	close(codes)
	counted := map[switchyard.Code]int{}
	for code := range codes {
		counted[code]++
	}
	if counted[switchyard.CodeForbidden] != RefusalBurst || counted[switchyard.CodeRateLimited] != 100-RefusalBurst {
		t.Fatalf("answers = %v, want %d FORBIDDEN and the rest RATE_LIMITED", counted, RefusalBurst)
	}
	if n := auditLength(); n != RefusalBurst {
		t.Fatalf("the flood left %d audit entries, want %d", n, RefusalBurst)
	}

	_, err := c.Apply(context.Background(), viewer)
	if e := switchyard.AsError(err); e.Code != switchyard.CodeRateLimited || e.Fields[switchyard.RetryAfterField] != 30 {
		t.Fatalf("Apply after the flood = %v (fields %v), want RATE_LIMITED after 30 seconds", err, e.Fields)
	}
	// Another operator is not held back by the viewer's flood.
	if _, err := c.Apply(context.Background(), examMode(true)); err != nil {
		t.Fatalf("an admin's change during the flood = %v", err)
	}
	advance(RefusalInterval / 2)
	_, err = c.Apply(context.Background(), viewer)
	if e := switchyard.AsError(err); e.Code != switchyard.CodeRateLimited || e.Fields[switchyard.RetryAfterField] != 15 {
		t.Fatalf("Apply half an interval later = %v (fields %v), want RATE_LIMITED after 15 seconds", err, e.Fields)
	}
	advance(RefusalInterval / 2)
	if _, err := c.Apply(context.Background(), viewer); switchyard.ErrorCode(err) != switchyard.CodeForbidden {
		t.Fatalf("Apply an interval later = %v, want FORBIDDEN, recorded", err)
	}
	if n := auditLength(); n != RefusalBurst+2 {
		t.Fatalf("audit holds %d entries, want the allowance, the admin's change and one more refusal", n)
	}
	if _, err := c.Apply(context.Background(), viewer); switchyard.ErrorCode(err) != switchyard.CodeRateLimited {
		t.Fatalf("Apply at once again = %v, want RATE_LIMITED", err)
	}
	if st, err := c.Status(context.Background()); err != nil || st.RateLimited != 100-RefusalBurst+3 {
		t.Fatalf("status rate_limited = %d, %v; want %d", st.RateLimited, err, 100-RefusalBurst+3)
	}
}

// Refusals the store makes (a stale revision) spend the allowance too, and
// requests a surface refuses itself (no valid token) have an allowance
// per sender.
func TestEveryRefusalSpendsTheAllowance(t *testing.T) {
	c, st := newCore(t)
	stale := examMode(true)
	stale.Expected = 7
	for range RefusalBurst {
		if _, err := c.Apply(context.Background(), stale); switchyard.ErrorCode(err) != switchyard.CodeRevisionConflict {
			t.Fatalf("Apply at revision 7 = %v, want REVISION_CONFLICT", err)
		}
	}
	if _, err := c.Apply(context.Background(), stale); switchyard.ErrorCode(err) != switchyard.CodeRateLimited {
		t.Fatalf("Apply past the allowance = %v, want RATE_LIMITED", err)
	}
	if entries, _ := st.Audit(context.Background(), store.AuditQuery{Limit: 100}); len(entries) != RefusalBurst {
		t.Fatalf("audit holds %d entries, want %d", len(entries), RefusalBurst)
	}

	for range RefusalBurst {
		if err := c.Refused("address 192.0.2.1"); err != nil {
			t.Fatalf("Refused within the allowance = %v", err)
		}
	}
	if err := c.Refused("address 192.0.2.1"); switchyard.ErrorCode(err) != switchyard.CodeRateLimited {
		t.Fatalf("Refused past the allowance = %v, want RATE_LIMITED", err)
	}
	if err := c.Refused("address 192.0.2.2"); err != nil {
		t.Fatalf("another address = %v, want its own allowance", err)
	}
}
