package rediscache_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/rediscache"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// realRedis returns a client of the Redis named by SWITCHYARD_TEST_REDIS_URL
// and a key prefix of its own, whose keys are deleted when the test ends,
// so parallel tests and runs never see each other's keys.
func realRedis(t testing.TB) (redis.UniversalClient, string) {
	t.Helper()
	rdb, err := rediscache.NewClient(storetest.ServiceURL(t, "SWITCHYARD_TEST_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	p := "switchyard-test:" + rand.Text() + ":"
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, p+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("clean up %s*: %v", p, err)
		}
	})
	return rdb, p
}

func TestContractRealRedis(t *testing.T) {
	realRedis(t) // skip the whole suite early when there is no Redis
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		rdb, p := realRedis(t)
		mem := memory.NewDemo()
		return storetest.Harness{Store: rediscache.New(mem, rdb, rediscache.WithPrefix(p)),
			Tamper: func(t *testing.T, seq int64, reason string) {
				mem.Tamper(seq, func(e *store.AuditEntry) { e.Reason = reason })
			}}
	})
}

func TestRealRedisPropagation(t *testing.T) {
	rdb, p := realRedis(t)
	mem := memory.NewDemo()
	writer := rediscache.New(mem, rdb, rediscache.WithPrefix(p))
	watcher := rediscache.New(mem, rdb, rediscache.WithPrefix(p), rediscache.WithPollInterval(time.Hour))
	heard := changes(t, watcher)
	waitFor(t, heard, 1)
	if _, _, err := writer.Apply(ctx(t), store.Change{Mutation: switchyard.SetSystemFlag(switchyard.FreezeUpdates, true)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, heard, 2)
	if rev, err := watcher.Current(ctx(t)); err != nil || !rev.System.FreezeUpdates {
		t.Fatalf("watcher's Current = %+v, %v", rev, err)
	}
}

// silentServer accepts connections and never answers, like a Redis host
// that is up but hung: the worst case, since nothing is refused.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestDeadRedisCostsAtMostTheDeadline(t *testing.T) {
	const timeout = 100 * time.Millisecond
	tests := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"refused", func(*testing.T) string { return "127.0.0.1:1" }},
		{"hung", silentServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rdb := client(t, tt.addr(t))
			mem := memory.NewDemo()
			rev, _ := mem.Current(ctx(t))
			if _, _, err := mem.CreateSession(ctx(t), evaluator.NewSnapshot("s", "u", rev, time.Now(), time.Hour)); err != nil {
				t.Fatal(err)
			}
			reads := []struct {
				name string
				read func(*rediscache.Store) error
			}{
				{"Current", func(c *rediscache.Store) error { _, err := c.Current(ctx(t)); return err }},
				{"Session", func(c *rediscache.Store) error { _, err := c.Session(ctx(t), "s"); return err }},
				{"MissingSession", func(c *rediscache.Store) error { _, err := c.Session(ctx(t), "nope"); return err }},
			}
			for _, r := range reads {
				// A fresh replica with empty caches, so the read tries Redis.
				cache := rediscache.New(mem, rdb, rediscache.WithTimeout(timeout),
					rediscache.WithLogger(slog.New(slog.DiscardHandler)))
				start := time.Now()
				if err := r.read(cache); err != nil && switchyard.ErrorCode(err) != switchyard.CodeNotFound {
					t.Fatalf("%s = %v", r.name, err)
				}
				if elapsed := time.Since(start); elapsed > 2*timeout {
					t.Fatalf("%s took %v with Redis dead, want under %v", r.name, elapsed, 2*timeout)
				}
				if h := cache.Health(); h.OK || h.Error == "" {
					t.Fatalf("health after %s = %+v, want not OK with a reason", r.name, h)
				}
			}
		})
	}
}

func BenchmarkCurrentHitInProcess(b *testing.B) {
	cache := rediscache.New(memory.NewDemo(), client(b, miniredis.RunT(b).Addr()), rediscache.WithLocalTTL(time.Hour))
	if _, err := cache.Current(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cache.Current(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCurrentRedisHit reads the version key from a real Redis on
// every call (no in-process TTL); the revision itself is in process.
func BenchmarkCurrentRedisHit(b *testing.B) {
	rdb, p := realRedis(b)
	cache := rediscache.New(memory.NewDemo(), rdb, rediscache.WithPrefix(p), rediscache.WithLocalTTL(time.Nanosecond))
	ctx := context.Background()
	if _, err := cache.Current(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cache.Current(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSessionRedisHit reads and decodes a snapshot from a real Redis
// on every call: the cache keeps no snapshot in process.
func BenchmarkSessionRedisHit(b *testing.B) {
	rdb, p := realRedis(b)
	cache := rediscache.New(memory.NewDemo(), rdb, rediscache.WithPrefix(p))
	ids := seed(b, cache, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := cache.Session(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// seed creates n sessions and returns their IDs.
func seed(b *testing.B, s store.Store, n int) []string {
	ctx := context.Background()
	rev, err := s.Current(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("s-%d", i)
		if _, _, err := s.CreateSession(ctx, evaluator.NewSnapshot(ids[i], "u", rev, time.Now(), time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}
