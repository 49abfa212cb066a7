package evaluator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// contexts are the evaluation contexts the tests below evaluate every flag
// in: each rule of randomFlag matches in one and misses in another.
var contexts = []map[string]any{
	nil,
	{"targetingKey": "user-1", "email": "ada@example.com", "groups": []any{"beta"}},
	{"targetingKey": "user-2", "email": "bob@example.org", "version": "2.1.0"},
	{"targetingKey": "user-3", "email": "eve@corp.example", "groups": []any{"staff"}, "version": "0.9.0"},
}

// compiledOf returns the compiled flag fs evaluates key with.
func compiledOf(fs *FlagSet, key string) *compiledFlag {
	f, _ := fs.lookup(key)
	return f
}

// sameResults fails the test unless got evaluates every flag exactly as
// want does, live and pinned, in every context: value, variant, reason,
// error and metadata (the revision and pinned included).
func sameResults(t *testing.T, what string, got, want *FlagSet) {
	t.Helper()
	if !slices.Equal(got.Keys(), want.Keys()) {
		t.Fatalf("%s: keys %v, want %v", what, got.Keys(), want.Keys())
	}
	for _, key := range append(slices.Clone(want.Keys()), "no-such-flag") {
		for _, ctx := range contexts {
			for _, view := range []struct{ got, want *FlagSet }{{got, want}, {got.Pinned(), want.Pinned()}} {
				g, w := view.got.Evaluate(key, ctx), view.want.Evaluate(key, ctx)
				if !reflect.DeepEqual(g, w) {
					t.Fatalf("%s: %s in %v (pinned %d):\n got %+v\nwant %+v", what, key, ctx, view.want.pinned, g, w)
				}
			}
		}
	}
}

// sharedBase is the revision TestCompileFromShares changes: flags reading
// evaluators directly, through another evaluator and not at all, one with
// metadata of its own, and one whose rule names an evaluator not yet
// defined (PARSE_ERROR until it is).
func sharedBase() *switchyard.Revision {
	off := "off"
	flag := func(targeting string, md map[string]any) switchyard.Flag {
		f := switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false},
			DefaultVariant: &off, Metadata: md}
		if targeting != "" {
			f.Targeting = json.RawMessage(targeting)
		}
		return f
	}
	r := switchyard.InitialRevision(time.Unix(0, 0))
	r.Flags = map[string]switchyard.Flag{
		"static":        flag("", nil),
		"described":     flag("", map[string]any{"owner": "payments"}),
		"own-rule":      flag(`{"if": [{"ends_with": [{"var": "email"}, "@example.org"]}, "on", "off"]}`, nil),
		"reads-staff":   flag(`{"if": [{"$ref": "staff"}, "on", "off"]}`, nil),
		"reads-beta":    flag(`{"if": [{"$ref": "beta"}, "on", "off"]}`, nil),
		"needs-missing": flag(`{"if": [{"$ref": "later"}, "on", "off"]}`, nil),
	}
	r.Evaluators = map[string]json.RawMessage{
		"staff":  json.RawMessage(`{"ends_with": [{"var": "email"}, "@example.com"]}`),
		"beta":   json.RawMessage(`{"and": [{"$ref": "staff"}, {"in": ["beta", {"var": "groups"}]}]}`),
		"unused": json.RawMessage(`{"in": ["x", {"var": "groups"}]}`),
	}
	r.Metadata = map[string]any{"team": "platform"}
	return r
}

// CompileFrom compiles what a revision changes and shares the rest: a
// toggle compiles the one runtime flag it flips, a flag edited is the only
// flag compiled, a shared evaluator changed recompiles the flags that read
// it (directly or through another evaluator) and only those, and metadata
// of the flag set recompiles nothing while results carry the new metadata.
// Whatever it shares, it serves exactly what a full compilation does.
func TestCompileFromShares(t *testing.T) {
	base := sharedBase()
	baseSet, err := Compile(base, switchyard.ModeDemo)
	if err != nil {
		t.Fatal(err)
	}
	evaluator := func(name, rule string) func(*switchyard.Revision) {
		return func(r *switchyard.Revision) {
			r.Evaluators = maps.Clone(r.Evaluators)
			r.Evaluators[name] = json.RawMessage(rule)
		}
	}
	tests := []struct {
		name   string
		mode   string
		change func(*switchyard.Revision)
		// want lists the flags compiled anew.
		want []string
	}{
		{"toggle", "", func(r *switchyard.Revision) { r.System.FreezeUpdates = true }, []string{switchyard.FreezeUpdates}},
		{"nothing", "", func(r *switchyard.Revision) {}, nil},
		{"one flag edited", "", func(r *switchyard.Revision) {
			r.Flags = maps.Clone(r.Flags)
			f := r.Flags["own-rule"]
			f.Targeting = json.RawMessage(`{"if": [{"ends_with": [{"var": "email"}, "@example.net"]}, "on", "off"]}`)
			r.Flags["own-rule"] = f
		}, []string{"own-rule"}},
		{"an evaluator read directly and through another", "", evaluator("staff", `{"ends_with": [{"var": "email"}, "@corp.example"]}`),
			[]string{"reads-beta", "reads-staff"}},
		{"an evaluator read through none other", "", evaluator("beta", `{"in": ["staff", {"var": "groups"}]}`), []string{"reads-beta"}},
		{"an evaluator no flag reads", "", evaluator("unused", `{"in": ["y", {"var": "groups"}]}`), nil},
		{"the evaluator a flag was missing", "", evaluator("later", `{"in": ["beta", {"var": "groups"}]}`), []string{"needs-missing"}},
		{"flag-set metadata", "", func(r *switchyard.Revision) { r.Metadata = map[string]any{"team": "payments", "env": "prod"} }, nil},
		{"a flag added", "", func(r *switchyard.Revision) {
			r.Flags = maps.Clone(r.Flags)
			r.Flags["added"] = r.Flags["static"]
		}, []string{"added"}},
		{"a flag removed", "", func(r *switchyard.Revision) {
			r.Flags = maps.Clone(r.Flags)
			delete(r.Flags, "described")
		}, nil},
		{"equal definitions in new objects", "", func(r *switchyard.Revision) {
			flags := map[string]switchyard.Flag{}
			for key, f := range r.Flags {
				def := *f.DefaultVariant
				f.DefaultVariant, f.Targeting = &def, bytes.Clone(f.Targeting)
				f.Variants, f.Metadata = maps.Clone(f.Variants), maps.Clone(f.Metadata)
				flags[key] = f
			}
			r.Flags = flags
		}, nil},
		{"another mode", switchyard.ModeProduction, func(r *switchyard.Revision) {}, []string{switchyard.SystemModeKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := base.Clone()
			next.Number++
			tt.change(next)
			mode := tt.mode
			if mode == "" {
				mode = switchyard.ModeDemo
			}
			got, err := CompileFrom(context.Background(), baseSet, next, mode)
			if err != nil {
				t.Fatal(err)
			}
			var compiled []string
			for _, key := range got.Keys() {
				if compiledOf(got, key) != compiledOf(baseSet, key) {
					compiled = append(compiled, key)
				}
			}
			if !slices.Equal(compiled, tt.want) || got.compiled != len(tt.want) {
				t.Errorf("compiled %v (count %d), want %v", compiled, got.compiled, tt.want)
			}
			want, err := Compile(next, mode)
			if err != nil {
				t.Fatal(err)
			}
			sameResults(t, "from the base", got, want)
		})
	}
	// A toggle shares the general flags whole, and the list of keys.
	next := base.Clone()
	next.Number++
	next.System.ExamMode = true
	got, err := CompileFrom(context.Background(), baseSet, next, switchyard.ModeDemo)
	if err != nil {
		t.Fatal(err)
	}
	if got.general != baseSet.general || !sameSlice(got.Keys(), baseSet.Keys()) {
		t.Error("a toggle did not share the general flags and the keys of the flag set it was compiled from")
	}
	if r := got.Evaluate("needs-missing", nil); r.ErrorCode != ParseError {
		t.Errorf("a flag whose rule names no evaluator = %+v, want PARSE_ERROR", r)
	}
}

// Compiling stops when the context ends, before the next flag it would
// compile; a revision that needs nothing compiled is built whatever the
// context.
func TestCompileFromStopsWhenContextEnds(t *testing.T) {
	base := sharedBase()
	baseSet, err := Compile(base, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	toggled := base.Clone()
	toggled.Number++
	toggled.System.ExamMode = true
	if _, err := CompileFrom(ctx, baseSet, toggled, ""); err == nil || !strings.Contains(err.Error(), "EXAM_MODE") ||
		!errors.Is(err, context.Canceled) {
		t.Errorf("a toggle under an ended context: %v, want the compilation of its runtime flag cancelled", err)
	}
	same := base.Clone()
	same.Number++
	if _, err := CompileFrom(ctx, baseSet, same, ""); err != nil {
		t.Errorf("a revision changing nothing compiled under an ended context: %v, want nothing to compile", err)
	}
	if _, err := CompileFrom(ctx, nil, same, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("a full compilation under an ended context: %v, want it cancelled", err)
	}
}

// randomStep changes r as operators' changes could, at random: system
// flags, profiles and overrides, flags added, edited and removed (some
// that do not compile), evaluators added, changed and removed (some
// reading others, some cyclic), and the flag-set metadata.
func randomStep(rnd *rand.Rand, r *switchyard.Revision) {
	switch rnd.IntN(9) {
	case 0:
		r.System.FreezeUpdates = !r.System.FreezeUpdates
	case 1:
		r.ActiveProfile = []string{switchyard.ProfilePrimary, switchyard.ProfileFallback, switchyard.ProfileShadow}[rnd.IntN(3)]
	case 2:
		r.Overrides = maps.Clone(r.Overrides)
		on := rnd.IntN(2) == 0
		r.Overrides["search"] = switchyard.Override{Enabled: &on}
	case 3, 4, 5:
		r.Flags = maps.Clone(r.Flags)
		if r.Flags == nil {
			r.Flags = map[string]switchyard.Flag{}
		}
		for range 1 + rnd.IntN(3) {
			r.Flags[fmt.Sprintf("flag-%d", rnd.IntN(12))] = randomFlag(rnd)
		}
	case 6:
		r.Flags = maps.Clone(r.Flags)
		delete(r.Flags, fmt.Sprintf("flag-%d", rnd.IntN(12)))
	case 7:
		r.Evaluators = maps.Clone(r.Evaluators)
		if r.Evaluators == nil {
			r.Evaluators = map[string]json.RawMessage{}
		}
		name := []string{"staff", "beta", "loop-a", "loop-b"}[rnd.IntN(4)]
		if rnd.IntN(4) == 0 {
			delete(r.Evaluators, name)
		} else {
			r.Evaluators[name] = json.RawMessage(randomEvaluator(rnd, name))
		}
	case 8:
		r.Metadata = map[string]any{"team": []string{"platform", "payments"}[rnd.IntN(2)]}
		if rnd.IntN(3) == 0 {
			r.Metadata = nil
		}
	}
}

func randomEvaluator(rnd *rand.Rand, name string) string {
	switch name {
	case "staff":
		return []string{
			`{"ends_with": [{"var": "email"}, "@example.com"]}`,
			`{"ends_with": [{"var": "email"}, "@corp.example"]}`,
			`{"regex": [{"var": "email"}, ".*"]}`,
		}[rnd.IntN(3)]
	case "beta":
		return []string{
			`{"and": [{"$ref": "staff"}, {"in": ["beta", {"var": "groups"}]}]}`,
			`{"in": ["beta", {"var": "groups"}]}`,
		}[rnd.IntN(2)]
	case "loop-a":
		return []string{`{"$ref": "loop-b"}`, `{"in": ["staff", {"var": "groups"}]}`}[rnd.IntN(2)]
	}
	return []string{`{"!": {"$ref": "loop-a"}}`, `{"$ref": "staff"}`}[rnd.IntN(2)]
}

func randomFlag(rnd *rand.Rand) switchyard.Flag {
	on, off := "on", "off"
	f := switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": "on", "off": "off"}, DefaultVariant: &off}
	switch rnd.IntN(4) {
	case 0:
		f.DefaultVariant = &on
	case 1:
		f.DefaultVariant = nil
	case 2:
		f.State = switchyard.StateDisabled
	}
	if rnd.IntN(3) == 0 {
		f.Metadata = map[string]any{"owner": []string{"payments", "search"}[rnd.IntN(2)]}
	}
	if rnd.IntN(50) == 0 {
		// Variants of two types: the whole revision does not compile.
		f.Variants = map[string]any{"on": true, "off": "off"}
	}
	rules := []string{
		"",
		`{}`,
		`{"if": [{"$ref": "staff"}, "on", "off"]}`,
		`{"if": [{"$ref": "beta"}, "on", null]}`,
		`{"if": [{"$ref": "loop-a"}, "on", "off"]}`,
		`{"if": [{"sem_ver": [{"var": "version"}, ">=", "1.0.0"]}, "on", "off"]}`,
		`{"fractional": [{"cat": [{"var": "$flagd.flagKey"}, {"var": "targetingKey"}]}, ["on", 50], ["off", 50]]}`,
		`{"if": [{"\u0024ref": "staff"}, "off", "on"]}`,
		`{"if": [{"unknown_op": [1]}, "on", "off"]}`,
		`{"if": [{"in": [{"var": "email"}, ["ada@example.com"]]}, "on", "nope"]}`,
	}
	if rule := rules[rnd.IntN(len(rules))]; rule != "" {
		f.Targeting = json.RawMessage(rule)
	}
	return f
}

// The strongest proof that sharing changes nothing: over random sequences
// of changes, a flag set compiled from the previous revision's, and one
// compiled from a random earlier revision's (as an old revision is
// compiled from the current one), evaluate every flag exactly as a full
// compilation does, live and pinned, in every context, and fail exactly
// when it fails. ValidateChange, from a valid revision, refuses exactly
// what Validate refuses, and ChangedFlags names every flag whose results
// differ from the previous revision's but for the revision number.
func TestCompileFromMatchesCompile(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 12))
			cur := switchyard.InitialRevision(time.Unix(0, 0))
			var sets []*FlagSet
			var prevFull *FlagSet
			prevMode := ""
			for step := range 120 {
				next := cur.Clone()
				next.Number = cur.Number + 1
				for range 1 + rnd.IntN(2) {
					randomStep(rnd, next)
				}
				mode := []string{switchyard.ModeDemo, switchyard.ModeProduction}[rnd.IntN(4)/3]
				what := fmt.Sprintf("step %d (revision %d, %s)", step, next.Number, mode)
				if Validate(cur) == nil {
					full, incremental := Validate(next), ValidateChange(context.Background(), cur, next)
					if (full == nil) != (incremental == nil) {
						t.Fatalf("%s: ValidateChange = %v, Validate = %v", what, incremental, full)
					}
				}
				want, err := Compile(next, mode)
				var prev *FlagSet
				if len(sets) > 0 {
					prev = sets[len(sets)-1]
				}
				for _, base := range []*FlagSet{prev, randomSet(rnd, sets)} {
					got, gotErr := CompileFrom(context.Background(), base, next, mode)
					if (err == nil) != (gotErr == nil) {
						t.Fatalf("%s: CompileFrom = %v, Compile = %v", what, gotErr, err)
					}
					if err == nil {
						sameResults(t, what, got, want)
					}
				}
				if err != nil {
					// Such a revision is never served; the sequence goes
					// on from the one before.
					continue
				}
				if prevFull != nil && mode == prevMode {
					changed := ChangedFlags(cur, next, mode)
					for _, key := range differing(prevFull, want) {
						if !slices.Contains(changed, key) {
							t.Fatalf("%s: %s evaluates differently, but ChangedFlags = %v", what, key, changed)
						}
					}
				}
				prevFull, prevMode = want, mode
				got, _ := CompileFrom(context.Background(), prev, next, mode)
				sets = append(sets, got)
				cur = next
			}
		})
	}
}

// differing returns the keys of the flags that a and b evaluate
// differently in some context, live or pinned, but for the revision number
// in the metadata.
func differing(a, b *FlagSet) []string {
	var keys []string
	for _, key := range slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(a.Keys()), b.Keys()...)))) {
		for _, ctx := range contexts {
			ra, rb := a.Evaluate(key, ctx), b.Evaluate(key, ctx)
			ra.Metadata, rb.Metadata = maps.Clone(ra.Metadata), maps.Clone(rb.Metadata)
			delete(ra.Metadata, MetadataRevision)
			delete(rb.Metadata, MetadataRevision)
			if !reflect.DeepEqual(ra, rb) {
				keys = append(keys, key)
				break
			}
		}
	}
	return keys
}

func randomSet(rnd *rand.Rand, sets []*FlagSet) *FlagSet {
	if len(sets) == 0 {
		return nil
	}
	return sets[rnd.IntN(len(sets))]
}

// BenchmarkSizeEstimate compiles flag sets of one kind of flag each and
// reports, per flag, FlagSet.Size's estimate beside the heap the compiled
// set keeps alive once its revision is gone (every flag evaluated live and
// pinned, so metadata of flags with their own is built): the constants
// behind the estimate come from these figures.
func BenchmarkSizeEstimate(b *testing.B) {
	off := "off"
	evaluators := map[string]json.RawMessage{
		"staff": json.RawMessage(`{"ends_with": [{"var": "email"}, "@example.com"]}`),
		"tier0": json.RawMessage(`{"in": [{"var": "email"}, ["a@corp.example", "b@corp.example"]]}`),
	}
	for l := 1; l <= 4; l++ {
		refs := slices.Repeat([]string{fmt.Sprintf(`{"$ref": "tier%d"}`, l-1)}, 10)
		evaluators[fmt.Sprintf("tier%d", l)] = json.RawMessage(`{"or": [` + strings.Join(refs, ", ") + `]}`)
	}
	kinds := []struct {
		name  string
		count int
		flag  func(i int) switchyard.Flag
	}{
		{"static", 10_000, func(i int) switchyard.Flag {
			return switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &off}
		}},
		{"static_with_metadata", 10_000, func(i int) switchyard.Flag {
			return switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &off,
				Metadata: map[string]any{"description": fmt.Sprintf("flag %d", i)}}
		}},
		{"rule", 2_000, func(i int) switchyard.Flag {
			return switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &off,
				Targeting: json.RawMessage(fmt.Sprintf(`{"if": [{"and": [{"in": [{"var": "email"}, ["a%d@x", "b@x", "c@x"]]}, {"$ref": "staff"}]}, "on",
					{"sem_ver": [{"var": "version"}, ">=", "1.2.%d"]}, "off", {"fractional": [["on", 50], ["off", 50]]}]}`, i, i))}
		}},
		{"expanding", 6, func(i int) switchyard.Flag {
			return switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{"on": true, "off": false}, DefaultVariant: &off,
				Targeting: json.RawMessage(`{"if": [{"$ref": "tier4"}, "on", {"$ref": "tier3"}, "off", null]}`)}
		}},
	}
	for _, kind := range kinds {
		b.Run(kind.name, func(b *testing.B) {
			build := func() *FlagSet {
				r := switchyard.InitialRevision(time.Unix(0, 0))
				r.Evaluators = evaluators
				r.Flags = map[string]switchyard.Flag{}
				for i := range kind.count {
					r.Flags[fmt.Sprintf("flag-%05d", i)] = kind.flag(i)
				}
				fs, err := Compile(r, "")
				if err != nil {
					b.Fatal(err)
				}
				for _, key := range fs.Keys() {
					fs.Evaluate(key, nil)
					fs.Pinned().Evaluate(key, nil)
				}
				return fs
			}
			for b.Loop() {
				build()
			}
			b.StopTimer()
			before := liveHeap()
			fs := build()
			held := liveHeap() - before
			b.ReportMetric(float64(fs.Size())/float64(kind.count), "estimate-B/flag")
			b.ReportMetric(float64(held)/float64(kind.count), "heap-B/flag")
			runtime.KeepAlive(fs)
		})
	}
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
