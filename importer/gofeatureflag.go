package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/switchyard-dev/switchyard"
	"go.yaml.in/yaml/v3"
)

// GO Feature Flag's flag file: a map from flag key to flag, in YAML or JSON.
type goffFlag struct {
	Variations       map[string]any  `json:"variations"`
	Targeting        []goffRule      `json:"targeting"`
	DefaultRule      *goffRule       `json:"defaultRule"`
	Disable          bool            `json:"disable"`
	BucketingKey     string          `json:"bucketingKey"`
	Experimentation  json.RawMessage `json:"experimentation"`
	ScheduledRollout json.RawMessage `json:"scheduledRollout"`
	Metadata         map[string]any  `json:"metadata"`
}

type goffRule struct {
	Name               string             `json:"name"`
	Query              string             `json:"query"`
	Variation          string             `json:"variation"`
	Percentage         map[string]float64 `json:"percentage"`
	ProgressiveRollout json.RawMessage    `json:"progressiveRollout"`
	Disable            bool               `json:"disable"`
}

// goffPercentageScale is GO Feature Flag's: a percentage of 12.5 is 12500
// buckets of 100000.
const goffPercentageScale = 1000

func importGoFeatureFlag(content []byte, c *converted) error {
	trimmed := bytes.TrimSpace(content)
	var file map[string]json.RawMessage
	if len(trimmed) > 0 && trimmed[0] == '{' {
		if err := json.Unmarshal(trimmed, &file); err != nil {
			return decodeError("", "", err)
		}
	} else {
		var doc map[string]any
		if err := yaml.Unmarshal(content, &doc); err != nil {
			return fileError("", "malformed YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		file = map[string]json.RawMessage{}
		for key, v := range doc {
			if err := checkTreeDepth(key, "", v, 0); err != nil {
				return err
			}
			raw, err := json.Marshal(jsonCompatible(v))
			if err != nil {
				return flagError(key, "", "cannot be read as JSON: %s", err)
			}
			file[key] = raw
		}
	}
	for _, key := range sortedKeys(file) {
		raw := file[key]
		if err := checkDepth(key, "", raw); err != nil {
			return err
		}
		var f goffFlag
		if err := json.Unmarshal(raw, &f); err != nil {
			return decodeError(key, "", err)
		}
		flag, err := convertGoffFlag(key, f, c)
		if err != nil {
			return err
		}
		if err := c.add(key, "", flag); err != nil {
			return err
		}
	}
	return nil
}

// checkTreeDepth bounds the nesting of a decoded YAML document, as
// checkDepth does for JSON.
func checkTreeDepth(flag, path string, v any, depth int) error {
	if depth > maxDepth {
		return flagError(flag, path, "nested deeper than %d levels", maxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if err := checkTreeDepth(flag, joinPath(path, k), e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := checkTreeDepth(flag, index(path, i), e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonCompatible converts what YAML decodes that JSON cannot encode (maps
// with non-string keys) into JSON's shapes.
func jsonCompatible(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonCompatible(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonCompatible(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonCompatible(e)
		}
		return out
	}
	return v
}

func convertGoffFlag(key string, g goffFlag, c *converted) (switchyard.Flag, error) {
	f := switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{}}
	if len(g.Variations) == 0 {
		return f, flagError(key, "variations", "the flag has no variations")
	}
	for name, v := range g.Variations {
		if v == nil {
			return f, flagError(key, "variations."+name, "the variation has no value")
		}
		f.Variants[name] = v
	}
	if g.DefaultRule == nil {
		return f, flagError(key, "defaultRule", "the flag has no default rule")
	}
	for _, k := range sortedKeys(g.Metadata) {
		switch g.Metadata[k].(type) {
		case string, float64, bool, int:
			if f.Metadata == nil {
				f.Metadata = map[string]any{}
			}
			f.Metadata[k] = g.Metadata[k]
		default:
			c.note(key, "metadata."+k, SeverityUnsupported, "flagd metadata holds only strings, numbers and booleans: not imported")
		}
	}
	if g.Disable {
		// GO Feature Flag serves the application's default, as flagd does
		// for a disabled flag.
		f.State = switchyard.StateDisabled
	}
	if len(g.Experimentation) > 0 && string(g.Experimentation) != "null" {
		c.note(key, "experimentation", SeverityUnsupported,
			"the experimentation window is not imported: the flag is served at all times")
	}
	if len(g.ScheduledRollout) > 0 && string(g.ScheduledRollout) != "null" {
		c.note(key, "scheduledRollout", SeverityUnsupported,
			"scheduled steps are not imported: the flag keeps its current configuration")
	}
	gc := &goffConverter{key: key, flag: g, c: c}
	var pairs [][2]any
	for i, r := range g.Targeting {
		path := index("targeting", i)
		if r.Disable {
			continue
		}
		result, ok, err := gc.result(r, path)
		if err != nil {
			return f, err
		}
		if !ok {
			continue
		}
		cond, why, err := gc.query(r.Query, path+".query")
		if err != nil {
			return f, err
		}
		if why != "" {
			c.note(key, path+".query", SeverityUnsupported, "%s: the rule never matches", why)
			continue
		}
		pairs = append(pairs, [2]any{cond, result})
	}
	def, ok, err := gc.result(*g.DefaultRule, "defaultRule")
	if err != nil {
		return f, err
	}
	if !ok {
		def = nil
	}
	if gc.caseNoted {
		c.note(key, "targeting", SeverityChanged,
			"GO Feature Flag compares strings case-insensitively (except \"in\"); here they match only in the case written")
	}
	var rule any
	switch d := def.(type) {
	case string:
		f.DefaultVariant = &d
		rule = ifChain(pairs, nil)
	default:
		rule = ifChain(pairs, def)
	}
	switch r := rule.(type) {
	case nil:
	case string:
		f.DefaultVariant = &r
	default:
		if f.Targeting, err = marshalTargeting(rule); err != nil {
			return f, err
		}
	}
	return f, nil
}

type goffConverter struct {
	key       string
	flag      goffFlag
	c         *converted
	caseNoted bool
}

// result converts what a rule serves: a variation or a percentage split.
// ok is false when the rule serves nothing that can be converted.
func (g *goffConverter) result(r goffRule, path string) (any, bool, error) {
	if len(r.ProgressiveRollout) > 0 && string(r.ProgressiveRollout) != "null" {
		g.c.note(g.key, path+".progressiveRollout", SeverityUnsupported,
			"progressive rollouts change with time and are not imported: the rule never matches")
		return nil, false, nil
	}
	if len(r.Percentage) > 0 {
		names := make([]string, 0, len(r.Percentage))
		for name, pct := range r.Percentage {
			if _, ok := g.flag.Variations[name]; !ok {
				return nil, false, flagError(g.key, path+".percentage."+name, "names no variation")
			}
			if pct < 0 || math.IsNaN(pct) || math.IsInf(pct, 0) {
				return nil, false, flagError(g.key, path+".percentage."+name, "percentage %v is not between 0 and 100", pct)
			}
			names = append(names, name)
		}
		// GO Feature Flag fills buckets in reverse name order; keep it.
		sort.Sort(sort.Reverse(sort.StringSlice(names)))
		args := []any{}
		if g.flag.BucketingKey != "" {
			args = append(args, attr(g.flag.BucketingKey))
		}
		for _, name := range names {
			args = append(args, []any{name, int(math.Round(r.Percentage[name] * goffPercentageScale))})
		}
		g.c.note(g.key, path+".percentage", SeverityChanged,
			"GO Feature Flag buckets users with FNV-1a of the flag key and targeting key, which flagd targeting cannot compute: the split keeps its percentages (flagd's fractional), but users may land in other variations")
		return op("fractional", args...), true, nil
	}
	if r.Variation == "" {
		return nil, false, flagError(g.key, path, "the rule serves neither a variation nor a percentage")
	}
	if _, ok := g.flag.Variations[r.Variation]; !ok {
		return nil, false, flagError(g.key, path+".variation", "names no variation: %q", r.Variation)
	}
	return r.Variation, true, nil
}

// query converts a rule's query: GO Feature Flag's own query language
// (nikunjy/rules), or JsonLogic when the query is a JSON object.
// why is non-empty when a JsonLogic query uses an operator the evaluator
// lacks.
func (g *goffConverter) query(q, path string) (rule any, why string, err error) {
	q = strings.TrimSpace(q)
	if q == "" {
		return true, "", nil
	}
	if strings.HasPrefix(q, "{") {
		if err := checkDepth(g.key, path, []byte(q)); err != nil {
			return nil, "", err
		}
		if err := json.Unmarshal([]byte(q), &rule); err != nil {
			return nil, "", flagError(g.key, path, "malformed JsonLogic: %s", err)
		}
		if bad := unknownOperator(rule); bad != "" {
			return nil, fmt.Sprintf("JsonLogic operator %q is not available in flagd targeting", bad), nil
		}
		return renameKeyVar(rule), "", nil
	}
	p := &queryParser{src: q}
	e, err := p.parse()
	if err != nil {
		return nil, "", flagError(g.key, path, "%s", err)
	}
	g.caseNoted = g.caseNoted || p.caseInsensitive
	return e, "", nil
}

// renameKeyVar points GO Feature Flag's "key" attribute at the targeting
// key, which is what it holds there.
func renameKeyVar(rule any) any {
	switch x := rule.(type) {
	case map[string]any:
		for k, v := range x {
			if k == "var" {
				if s, ok := v.(string); ok && s == "key" {
					x[k] = targetingKey
					continue
				}
				if l, ok := v.([]any); ok && len(l) > 0 && l[0] == "key" {
					l[0] = targetingKey
					continue
				}
			}
			x[k] = renameKeyVar(v)
		}
	case []any:
		for i, v := range x {
			x[i] = renameKeyVar(v)
		}
	}
	return rule
}

// flagdOperators are the JsonLogic operators Switchyard's targeting
// evaluates (flagd's set).
var flagdOperators = []string{
	"var", "missing", "missing_some", "if", "?:", "and", "or", "!", "!!", "==", "!=", "===", "!==",
	"<", "<=", ">", ">=", "+", "-", "*", "/", "%", "min", "max", "in", "cat", "substr", "merge",
	"map", "filter", "reduce", "all", "none", "some", "starts_with", "ends_with", "sem_ver", "fractional",
}

// unknownOperator returns the first operator of rule flagd does not know.
func unknownOperator(rule any) string {
	switch x := rule.(type) {
	case map[string]any:
		for k, v := range x {
			if !slices.Contains(flagdOperators, k) {
				return k
			}
			if bad := unknownOperator(v); bad != "" {
				return bad
			}
		}
	case []any:
		for _, v := range x {
			if bad := unknownOperator(v); bad != "" {
				return bad
			}
		}
	}
	return ""
}
