package postgres

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
)

// benchClients is the number of concurrent clients of the parallel
// benchmarks, whatever GOMAXPROCS is.
const benchClients = 16

func setClients(b *testing.B) {
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
}

func benchSnapshot(b *testing.B, f *fixture) switchyard.Snapshot {
	cur, err := f.store.Current(testContext(b))
	if err != nil {
		b.Fatal(err)
	}
	return evaluator.NewSnapshot("template", "user", cur, time.Now(), time.Hour)
}

// BenchmarkCreateSession measures create-if-absent of new sessions by 16
// concurrent clients.
func BenchmarkCreateSession(b *testing.B) {
	f := newFixture(b)
	template := benchSnapshot(b, f)
	var next atomic.Int64
	setClients(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := testContext(b)
		for pb.Next() {
			snap := template
			snap.SessionID = fmt.Sprintf("bench-%d", next.Add(1))
			if _, created, err := f.store.CreateSession(ctx, snap); err != nil || !created {
				b.Errorf("create %s: %v, %v", snap.SessionID, created, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// surgeRate is the rate of new sessions BenchmarkCreateSessionSurge offers:
// an exam's students starting at once.
const surgeRate = 10_000

// BenchmarkCreateSessionSurge offers new sessions at surgeRate a second,
// each create in its own goroutine as a request would be, whatever the
// store's pace (an open loop: a slow store makes creates pile up, not
// slow down), and reports the rate achieved and the 99th percentile of
// the time a create took. The creates share statements and commits (see
// creates in sessionbatch.go).
func BenchmarkCreateSessionSurge(b *testing.B) {
	f := newFixture(b)
	template := benchSnapshot(b, f)
	took := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	ctx := testContext(b)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		// Keep to the rate: i creates are due i/surgeRate seconds in.
		for time.Since(start) < time.Duration(i)*time.Second/surgeRate {
			<-tick.C
		}
		wg.Go(func() {
			snap := template
			snap.SessionID = fmt.Sprintf("surge-%d", i)
			began := time.Now()
			if _, created, err := f.store.CreateSession(ctx, snap); err != nil || !created {
				b.Errorf("create %s: %v, %v", snap.SessionID, created, err)
			}
			took[i] = time.Since(began)
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkSession measures reading live snapshots by 16 concurrent clients.
func BenchmarkSession(b *testing.B) {
	f := newFixture(b)
	template := benchSnapshot(b, f)
	const sessions = 1000
	for i := range sessions {
		snap := template
		snap.SessionID = fmt.Sprintf("bench-%d", i)
		if _, _, err := f.store.CreateSession(testContext(b), snap); err != nil {
			b.Fatal(err)
		}
	}
	setClients(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := testContext(b)
		for pb.Next() {
			id := fmt.Sprintf("bench-%d", rand.IntN(sessions))
			if _, err := f.store.Session(ctx, id); err != nil {
				b.Errorf("read %s: %v", id, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkApply measures one audited change at a time (the operator's
// path: lock, revision, normalized tables, audit row, notify, commit),
// without and with an idempotency key (read under the lock, kept with the
// audit row), and reports its latency percentiles.
func BenchmarkApply(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		b.Run(map[bool]string{false: "no key", true: "keyed"}[keyed], func(b *testing.B) {
			f := newFixture(b)
			ctx := testContext(b)
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				a := store.Attempt{Actor: "bench", Role: "admin"}
				if keyed {
					a.IdempotencyKey, a.RequestHash = fmt.Sprintf("bench-%d", i), "h"
				}
				start := time.Now()
				_, _, err := f.store.Apply(ctx, store.Change{Attempt: a,
					Mutation: switchyard.SetSystemFlag(switchyard.ExamMode, i%2 == 0)})
				took = append(took, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			slices.Sort(took)
			pct := func(p float64) float64 {
				return float64(took[int(p*float64(len(took)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
		})
	}
}
