package jsonlogic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	library "github.com/diegoholiveira/jsonlogic/v3"
	"github.com/twmb/murmur3"
)

// A flagd-style evaluator built on github.com/diegoholiveira/jsonlogic/v3,
// the library flagd uses: the reference the benchmarks and the
// differential test compare the compiled rules with. Like flagd, it
// registers fractional, sem_ver, starts_with and ends_with as custom
// operations (which receive their arguments already evaluated) and, per
// evaluation, encodes the context with $flagd as JSON, applies the rule's
// JSON and reads the variant name back.

var registerFlagdOperators = sync.OnceFunc(func() {
	library.AddOperator("fractional", refFractional)
	library.AddOperator("sem_ver", refSemVer)
	library.AddOperator("starts_with", refAffix(strings.HasPrefix))
	library.AddOperator("ends_with", refAffix(strings.HasSuffix))
})

// flagdData is the data flagd gives the library: the context and $flagd.
func flagdData(flagKey string, ctx map[string]any) map[string]any {
	data := maps.Clone(ctx)
	if data == nil {
		data = map[string]any{}
	}
	data["$flagd"] = map[string]any{"flagKey": flagKey, "timestamp": time.Now().Unix()}
	return data
}

// flagdEvaluate evaluates a rule for a flag as flagd does per call,
// returning the variant name, or ok false for null.
func flagdEvaluate(rule []byte, flagKey string, ctx map[string]any) (variant string, ok bool, err error) {
	registerFlagdOperators()
	data, err := json.Marshal(flagdData(flagKey, ctx))
	if err != nil {
		return "", false, err
	}
	var out bytes.Buffer
	if err := library.Apply(bytes.NewReader(rule), bytes.NewReader(data), &out); err != nil {
		return "", false, err
	}
	s := strings.TrimSpace(out.String())
	if s == "null" {
		return "", false, nil
	}
	return strings.ReplaceAll(s, `"`, ""), true, nil
}

func refAffix(test func(s, affix string) bool) func(values, data any) any {
	return func(values, _ any) any {
		a, ok := values.([]any)
		if !ok || len(a) != 2 {
			return nil
		}
		s, ok1 := a[0].(string)
		affix, ok2 := a[1].(string)
		if !ok1 || !ok2 {
			return nil
		}
		return test(s, affix)
	}
}

func refSemVer(values, _ any) any {
	a, ok := values.([]any)
	if !ok || len(a) != 3 {
		return nil
	}
	text := func(x any) string {
		if s, ok := x.(string); ok {
			return s
		}
		return fmt.Sprintf("%v", x)
	}
	var have, want version
	name, _ := a[1].(string)
	op, ok := semverOps[name]
	if !parseVersion(text(a[0]), &have) || !ok || !parseVersion(text(a[2]), &want) {
		return nil
	}
	return op.test(&have, &want)
}

func refFractional(values, data any) any {
	a, ok := values.([]any)
	if !ok || len(a) == 0 {
		return nil
	}
	m, ok := data.(map[string]any)
	if !ok {
		return nil
	}
	flagKey := ""
	if p, ok := m["$flagd"].(map[string]any); ok {
		flagKey, _ = p["flagKey"].(string)
	}
	key, ok := a[0].(string)
	if ok {
		a = a[1:]
	} else {
		if a[0] == nil {
			a = a[1:]
		}
		tk, isString := m["targetingKey"].(string)
		if !isString || tk == "" {
			return nil
		}
		key = fmt.Sprintf("%s%s", flagKey, tk)
	}
	type entry struct {
		variant any
		weight  int64
	}
	var entries []entry
	var total int64
	for _, x := range a {
		d, ok := x.([]any)
		if !ok || len(d) == 0 {
			return nil
		}
		weight := int64(1)
		if len(d) >= 2 {
			w, ok := d[1].(float64)
			if !ok || w != float64(int64(w)) {
				return nil
			}
			weight = max(int64(w), 0)
		}
		switch d[0].(type) {
		case string, bool, float64, nil:
		default:
			return nil
		}
		total += weight
		entries = append(entries, entry{d[0], weight})
	}
	if total == 0 || total > maxTotalWeight {
		return nil
	}
	point := (uint64(murmur3.StringSum32(key)) * uint64(total)) >> 32
	var end uint64
	for _, e := range entries {
		end += uint64(e.weight)
		if point < end {
			return e.variant
		}
	}
	return nil
}
