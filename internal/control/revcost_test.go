package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
	"github.com/switchyard-dev/switchyard/store/postgres"
	"github.com/switchyard-dev/switchyard/store/rediscache"
	"github.com/switchyard-dev/switchyard/store/storetest"
)

// The state of issue #12's measurements: 10,000 flags, a few dozen of them
// rule-heavy: long rules (about 12 KB of targeting each, reading a shared
// evaluator), and short rules that expand shared evaluators nested four
// deep to thousands of operations, as large as the limit on one rule
// allows (at most 10,000 operations with every $ref expanded; the tens of
// thousands that made a toggle take seconds are refused now).
const (
	benchSimpleFlags    = 10_000
	benchHeavyFlags     = 40
	benchHeavySize      = 12_000
	benchExpandingFlags = 6
	benchExpandDepth    = 4
	benchExpandFan      = 5
)

// benchDocument returns the flags of the benchmarks below: simple boolean
// flags, every other one with a description (as the LaunchDarkly and
// Unleash importers write), and rule-heavy string flags.
func benchDocument() switchyard.Document {
	doc := switchyard.Document{
		Flags:      map[string]switchyard.Flag{},
		Evaluators: map[string]json.RawMessage{"staff": json.RawMessage(`{"ends_with": [{"var": "email"}, "@example.com"]}`)},
		Metadata:   map[string]any{"team": "platform"},
	}
	off := "off"
	for i := range benchSimpleFlags {
		f := switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &off}
		if i%2 == 0 {
			f.Metadata = map[string]any{"description": fmt.Sprintf("simple flag %d", i)}
		}
		doc.Flags[fmt.Sprintf("simple-%05d", i)] = f
	}
	doc.Evaluators["tier0"] = json.RawMessage(`{"in": [{"var": "email"}, ["a@corp.example", "b@corp.example"]]}`)
	for l := 1; l <= benchExpandDepth; l++ {
		refs := slices.Repeat([]string{fmt.Sprintf(`{"$ref": "tier%d"}`, l-1)}, benchExpandFan)
		doc.Evaluators[fmt.Sprintf("tier%d", l)] = json.RawMessage(`{"or": [` + strings.Join(refs, ", ") + `]}`)
	}
	def := "control"
	for i := range benchExpandingFlags {
		top := fmt.Sprintf("tier%d", benchExpandDepth)
		doc.Flags[fmt.Sprintf("expanding-%d", i)] = switchyard.Flag{
			State:          switchyard.StateEnabled,
			Variants:       map[string]any{"control": "control", "treatment": "treatment"},
			DefaultVariant: &def,
			Targeting: json.RawMessage(fmt.Sprintf(`{"if": [{"$ref": %q}, "treatment", {"$ref": %q}, "control", null]}`,
				top, top)),
		}
	}
	for i := range benchHeavyFlags {
		doc.Flags[fmt.Sprintf("heavy-%02d", i)] = switchyard.Flag{
			State:          switchyard.StateEnabled,
			Variants:       map[string]any{"control": "control", "treatment": "treatment", "holdout": "holdout"},
			DefaultVariant: &def,
			Targeting:      heavyTargeting(i, benchHeavySize),
		}
	}
	return doc
}

// heavyTargeting returns a rule of about size bytes: an if chain of
// conditions on the context (lists of emails, suffixes, versions, the
// shared staff evaluator), ending in a fractional rollout.
func heavyTargeting(seed, size int) json.RawMessage {
	var conds []string
	for n := 0; ; n++ {
		var emails []string
		for j := range 8 {
			emails = append(emails, strconv.Quote(fmt.Sprintf("user-%d-%d-%d@corp.example", seed, n, j)))
		}
		conds = append(conds,
			fmt.Sprintf(`{"and": [{"in": [{"var": "email"}, [%s]]}, {"$ref": "staff"}]}, "treatment"`, strings.Join(emails, ", ")),
			fmt.Sprintf(`{"sem_ver": [{"var": "app.version"}, ">=", "%d.%d.0"]}, "holdout"`, seed, n),
			fmt.Sprintf(`{"ends_with": [{"var": "plan"}, "tier-%d-%d"]}, "control"`, seed, n))
		rule := `{"if": [` + strings.Join(conds, ", ") +
			`, {"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]}, ["control", 50], ["treatment", 50]]}]}`
		if len(rule) >= size {
			return json.RawMessage(rule)
		}
	}
}

// importBench imports benchDocument through the core, as an operator
// would.
func importBench(b *testing.B, c *Core) {
	b.Helper()
	doc := benchDocument()
	_, err := c.Apply(context.Background(), Change{Actor: "admin:bench", Role: switchyard.RoleAdmin, Action: "import_flags",
		Target: "flags", Reason: "benchmark state", Phrase: switchyard.ImportPhrase,
		Plan: func() (Plan, error) {
			return Plan{Phrase: switchyard.ImportPhrase, Mutation: switchyard.ImportFlags(doc)}, nil
		}})
	if err != nil {
		b.Fatal(err)
	}
}

// productionStore is the production stack over a fresh schema of the test
// database: the Postgres store behind the Redis cache.
func productionStore(b *testing.B) store.Store {
	b.Helper()
	ctx := context.Background()
	u, schema := storetest.PostgresSchema(b)
	quiet := postgres.WithLogger(slog.New(slog.DiscardHandler))
	if _, err := postgres.Migrate(ctx, u, quiet); err != nil {
		b.Fatal(err)
	}
	pg, err := postgres.Open(ctx, u, quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pg.Close)
	rdb, err := rediscache.NewClient(storetest.ServiceURL(b, "SWITCHYARD_TEST_REDIS_URL"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Close() })
	return rediscache.New(pg, rdb, rediscache.WithPrefix(schema+":"), rediscache.WithLogger(slog.New(slog.DiscardHandler)))
}

// freeze is an admin's change turning FREEZE_UPDATES on or off.
func freeze(on bool) Change {
	return Change{Actor: "admin:bench", Role: switchyard.RoleAdmin, Action: "set_flag", Target: switchyard.FreezeUpdates,
		Reason: "benchmark", Phrase: switchyard.SystemFlagPhrase(switchyard.FreezeUpdates, on),
		Plan: func() (Plan, error) { return SystemFlagPlan(switchyard.FreezeUpdates, &on, "value") }}
}

// BenchmarkFreezeToggle measures the emergency brake and what revisions
// cost with 10,000 flags stored, rule-heavy ones included (issue #12,
// items 3 and 4): each iteration toggles FREEZE_UPDATES through the core,
// pins a new session to the revision it made, and evaluates flags (a long
// rule, an expanding one, one with metadata of its own) in it and in a
// session pinned to a random earlier revision, as the sessions of a busy
// service do. It reports the toggle's p50 and p99 in milliseconds and, at
// the end (after a GC that returns freed memory to the operating system),
// the live heap and the process's resident set in MB. Run it with
// -benchtime 1000x for the 1,000 revisions. The stores: memory,
// memory with a state directory (which production requires), and Postgres
// behind Redis with a state directory (SWITCHYARD_TEST_DATABASE_URL and
// SWITCHYARD_TEST_REDIS_URL).
func BenchmarkFreezeToggle(b *testing.B) {
	cases := []struct {
		name      string
		stateFile bool
		store     func(*testing.B) store.Store
	}{
		{"memory", false, func(*testing.B) store.Store { return memory.NewDemo() }},
		{"memory_state_file", true, func(*testing.B) store.Store { return memory.NewDemo() }},
		{"postgres_redis_state_file", true, productionStore},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cfg := Config{CacheTTL: time.Hour}
			if tc.stateFile {
				cfg.StateDir = b.TempDir()
			}
			c := New(slog.New(slog.DiscardHandler), cfg, tc.store(b))
			importBench(b, c)
			toggles(b, c)
			if err := c.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// toggles runs BenchmarkFreezeToggle's iterations on c and reports.
func toggles(b *testing.B, c *Core) {
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := c.Apply(ctx, freeze(i%2 == 0)); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		session := func(n int) string { return fmt.Sprintf("bench-session-%d", n) }
		for _, s := range []string{session(i), session(rnd.IntN(i + 1))} {
			ev, err := c.Evaluation(ctx, "", s)
			if err != nil {
				b.Fatal(err)
			}
			for _, key := range []string{"heavy-07", "expanding-3", "simple-00042"} {
				if r := ev.Result(key, map[string]any{"targetingKey": s}); r.ErrorCode != "" {
					b.Fatalf("%s in %s: %+v", key, s, r)
				}
			}
		}
	}
	b.StopTimer()
	slices.Sort(took)
	pct := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	reportMemory(b)
	runtime.KeepAlive(c)
}

// reportMemory reports the live heap and the resident set in MB, after a
// GC that returns what it freed to the operating system, and the peak
// resident set of the whole run.
func reportMemory(b *testing.B) {
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	for field, unit := range map[string]string{"VmRSS": "rss-MB", "VmHWM": "peak-rss-MB"} {
		if kb, ok := procStatus(field); ok {
			b.ReportMetric(float64(kb)/1024, unit)
		}
	}
}

// procStatus reads a field of /proc/self/status in kB; ok is false where
// there is no such file (not Linux).
func procStatus(field string) (kb int64, ok bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, value, found := strings.Cut(sc.Text(), ":")
		if !found || name != field {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		return n, err == nil
	}
	return 0, false
}
