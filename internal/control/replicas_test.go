package control

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/postgres"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// dying is a replica's store whose process dies in the middle of a claim,
// after the claim's work applied the change and before the claim's move
// is committed: its connections to the database are cut there.
type dying struct {
	store.Store
	proxy *storetest.Proxy
}

func (d *dying) ClaimDue(ctx context.Context, q store.DueQuery, work func(switchyard.ChangeRequest) (store.Move, bool)) (int64, error) {
	return d.Store.ClaimDue(ctx, q, func(cr switchyard.ChangeRequest) (store.Move, bool) {
		m, ok := work(cr)
		d.proxy.Cut()
		return m, ok
	})
}

// TestExactlyOnceAcrossReplicas: replicas over one Postgres database run
// their schedulers at the same moment, over and over, while one dies in
// the middle of a claim and another starts late; each due change request
// is applied exactly once, and the audit chain verifies.
func TestExactlyOnceAcrossReplicas(t *testing.T) {
	url, _ := storetest.PostgresSchema(t)
	ctx := context.Background()
	quiet := postgres.WithLogger(slog.New(slog.DiscardHandler))
	if _, err := postgres.Migrate(ctx, url, quiet); err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	replica := func(url string) (*Core, store.Store) {
		t.Helper()
		st, err := postgres.Open(ctx, url, quiet, postgres.WithClock(clk.now), postgres.WithTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		c := New(slog.New(slog.DiscardHandler), Config{CacheTTL: time.Hour, Now: clk.now}, st)
		c.backend.Load().stop()
		return c, st
	}
	proxy, proxied := storetest.Proxied(t, url)
	doomed, pg := replica(proxied)
	doomed.backend.Load().store = &dying{Store: pg, proxy: proxy}
	a, st := replica(url)
	b, _ := replica(url)

	modules := []string{"mastery", "revision", "adaptive", "difficulty", "mistakes", "search"}
	for _, m := range modules {
		mustPropose(t, a, Proposal{Change: confirmed(by("alice"), "OVERRIDE MODULE "+m+" TO v0", "roll back"),
			Action: "set_override", Fields: json.RawMessage(fmt.Sprintf(`{"module":%q,"version":"v0"}`, m)),
			ApplyAt: at(clk.now().Add(time.Hour))})
	}
	clk.advance(time.Hour)

	// The doomed replica claims the first request due and dies after
	// applying it; its claim is released with its connection.
	if err := doomed.runDue(ctx, doomed.backend.Load(), 0); err == nil {
		t.Fatal("the doomed replica's claim did not fail")
	}
	cur, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if state := request(t, a, 1).State; cur.Number != 2 || state != switchyard.ChangeApproved {
		t.Fatalf("the doomed replica did not die between applying request 1 (revision %d) and recording it (%s)", cur.Number, state)
	}
	var wg sync.WaitGroup
	for _, c := range []*Core{a, b} {
		for range 4 {
			wg.Go(func() {
				if err := c.runDue(ctx, c.backend.Load(), 0); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	late, _ := replica(url) // a replica started once it was all done
	due(t, late)

	if cur, err = st.Current(ctx); err != nil {
		t.Fatal(err)
	}
	if cur.Number != int64(1+len(modules)) {
		t.Fatalf("current revision %d, want %d: one per request", cur.Number, 1+len(modules))
	}
	counts := map[string]int{}
	for _, e := range actions(t, st) {
		f := strings.Fields(e) // action, target, outcome
		counts[f[0]+" "+f[2]]++
	}
	want := map[string]int{"propose_change applied": len(modules), "set_override applied": len(modules),
		"apply_change applied": len(modules)}
	if !maps.Equal(counts, want) {
		t.Fatalf("audit log holds %v, want %v", counts, want)
	}
	for i := range modules {
		if v := request(t, a, int64(i+1)); v.State != switchyard.ChangeApplied {
			t.Errorf("request %d: %+v", i+1, v.ChangeRequest)
		}
	}
}
