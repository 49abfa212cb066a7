package importer

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// LaunchDarkly's flag JSON, as its REST API returns it (GET
// /api/v2/flags/{project}/{flag}, or the list endpoint's {"items": [...]}).
// Only the fields evaluation depends on are read.
type ldFlag struct {
	Key          string                     `json:"key"`
	Description  string                     `json:"description"`
	Variations   []ldVariation              `json:"variations"`
	Environments map[string]json.RawMessage `json:"environments"`
}

type ldVariation struct {
	Value any    `json:"value"`
	Name  string `json:"name"`
}

type ldEnvironment struct {
	On             bool            `json:"on"`
	Salt           string          `json:"salt"`
	Targets        []ldTarget      `json:"targets"`
	ContextTargets []ldTarget      `json:"contextTargets"`
	Rules          []ldRule        `json:"rules"`
	Fallthrough    *ldVarOrRollout `json:"fallthrough"`
	OffVariation   *int            `json:"offVariation"`
	Prerequisites  []ldPrereq      `json:"prerequisites"`
}

type ldTarget struct {
	Values      []string `json:"values"`
	Variation   int      `json:"variation"`
	ContextKind string   `json:"contextKind"`
}

type ldVarOrRollout struct {
	Variation *int       `json:"variation"`
	Rollout   *ldRollout `json:"rollout"`
}

type ldRule struct {
	ldVarOrRollout
	Clauses []ldClause `json:"clauses"`
}

type ldClause struct {
	Attribute   string `json:"attribute"`
	Op          string `json:"op"`
	Values      []any  `json:"values"`
	Negate      bool   `json:"negate"`
	ContextKind string `json:"contextKind"`
}

type ldRollout struct {
	Variations []struct {
		Variation int `json:"variation"`
		Weight    int `json:"weight"`
	} `json:"variations"`
	BucketBy    string `json:"bucketBy"`
	Seed        *int   `json:"seed"`
	Kind        string `json:"kind"`
	ContextKind string `json:"contextKind"`
}

type ldPrereq struct {
	Key       string `json:"key"`
	Variation int    `json:"variation"`
}

// ldParsed is one flag with the chosen environment's configuration.
type ldParsed struct {
	size    int // bytes of the environment's JSON, the cost of inlining it
	key     string
	flag    ldFlag
	env     ldEnvironment
	envPath string
	names   []string
}

// maxPrerequisiteDepth bounds how deep prerequisite chains are inlined; LD
// itself allows long chains, but each level copies the prerequisite's whole
// targeting into its dependants.
const maxPrerequisiteDepth = 8

// maxInlined bounds the JSON a flag's prerequisites may copy into it, so
// prerequisites shared many times over cannot blow a flag up exponentially.
const maxInlined = 1 << 20

func importLaunchDarkly(content []byte, opts Options, c *converted) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(content, &top); err != nil {
		return decodeError("", "", err)
	}
	var raws []json.RawMessage
	var paths []string
	if items, ok := top["items"]; ok {
		if err := json.Unmarshal(items, &raws); err != nil {
			return decodeError("", "items", err)
		}
		for i := range raws {
			paths = append(paths, index("items", i))
		}
	} else if _, ok := top["key"]; ok {
		raws, paths = []json.RawMessage{content}, []string{""}
	} else {
		return fileError("", "not a LaunchDarkly flag: expected a flag object with \"key\" or a list with \"items\"")
	}

	flags := make([]ldFlag, len(raws))
	envNames := map[string]bool{}
	for i, raw := range raws {
		var head struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return decodeError("", joinPath(paths[i], "key"), err)
		}
		if head.Key == "" {
			return fileError(paths[i], "the flag has no key")
		}
		if err := checkDepth(head.Key, "", raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &flags[i]); err != nil {
			return decodeError(head.Key, "", err)
		}
		for name := range flags[i].Environments {
			envNames[name] = true
		}
	}
	env := opts.Environment
	if env == "" {
		switch len(envNames) {
		case 0:
			return fileError("", "the flags have no environments: export them with their environment configuration")
		case 1:
			for name := range envNames {
				env = name
			}
		default:
			return switchyard.Errorf(switchyard.CodeInvalidRequest,
				"the file holds several environments (%s): choose one with --environment",
				strings.Join(sortedKeys(envNames), ", ")).With("environments", sortedKeys(envNames))
		}
	}

	all := map[string]*ldParsed{}
	var order []*ldParsed
	for _, f := range flags {
		if _, dup := all[f.Key]; dup {
			return flagError(f.Key, "key", "the file defines this flag twice")
		}
		p := &ldParsed{key: f.Key, flag: f, envPath: "environments." + env}
		raw, ok := f.Environments[env]
		if !ok {
			return flagError(f.Key, "environments", "has no environment %q (it has %s)", env,
				strings.Join(sortedKeys(f.Environments), ", "))
		}
		p.size = len(raw)
		if err := json.Unmarshal(raw, &p.env); err != nil {
			return decodeError(f.Key, p.envPath, err)
		}
		if len(f.Variations) == 0 {
			return flagError(f.Key, "variations", "the flag has no variations")
		}
		p.names = ldVariantNames(f.Variations)
		all[f.Key] = p
		order = append(order, p)
	}
	conv := &ldConverter{all: all, c: c}
	for _, p := range order {
		f, err := conv.flag(p)
		if err != nil {
			return err
		}
		if err := c.add(p.key, "", f); err != nil {
			return err
		}
	}
	return nil
}

// ldVariantNames names each variation: its name in LaunchDarkly, else its
// value when that is a short string or a boolean, else variation-<index>.
func ldVariantNames(vars []ldVariation) []string {
	var used variantNames
	names := make([]string, len(vars))
	for i, v := range vars {
		preferred := strings.TrimSpace(v.Name)
		if preferred == "" {
			switch val := v.Value.(type) {
			case string:
				if val != "" && len(val) <= 64 {
					preferred = val
				}
			case bool:
				preferred = strconv.FormatBool(val)
			}
		}
		if preferred == "" {
			preferred = "variation-" + strconv.Itoa(i)
		}
		names[i] = used.take(preferred)
	}
	return names
}

type ldConverter struct {
	all map[string]*ldParsed
	c   *converted
	// inlined counts the bytes of prerequisite rules copied into the flag
	// being converted.
	inlined int
}

func (l *ldConverter) flag(p *ldParsed) (switchyard.Flag, error) {
	f := switchyard.Flag{State: switchyard.StateEnabled, Variants: map[string]any{}}
	for i, v := range p.flag.Variations {
		f.Variants[p.names[i]] = v.Value
	}
	if p.flag.Description != "" {
		f.Metadata = map[string]any{"description": p.flag.Description}
	}
	off, err := l.offVariant(p)
	if err != nil {
		return f, err
	}
	if !p.env.On {
		// Off: LaunchDarkly serves the off variation, or the application's
		// default when there is none, which is what a disabled flag does.
		if off == nil {
			f.State = switchyard.StateDisabled
		} else {
			name := off.(string)
			f.DefaultVariant = &name
		}
		return f, nil
	}
	if p.env.Fallthrough == nil {
		return f, flagError(p.key, p.envPath+".fallthrough", "needs a variation or a rollout")
	}
	// A fixed fallthrough is the default variant, so fallthrough evaluations
	// report DEFAULT as LaunchDarkly reports FALLTHROUGH. Only when a failed
	// prerequisite must yield the application's default (no off variation)
	// does the targeting spell the fallthrough out and leave no default.
	explicit := p.env.Fallthrough.Variation == nil || (len(p.env.Prerequisites) > 0 && off == nil)
	l.inlined = 0
	rule, err := l.expr(p, explicit, nil, true)
	if err != nil {
		return f, err
	}
	if !explicit {
		name, err := p.variation(*p.env.Fallthrough.Variation, p.envPath+".fallthrough.variation")
		if err != nil {
			return f, err
		}
		def := name.(string)
		f.DefaultVariant = &def
	} else if off != nil {
		name := off.(string)
		f.DefaultVariant = &name
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

// offVariant is the variant name served when the flag is off or a
// prerequisite fails, or nil for the application's default.
func (l *ldConverter) offVariant(p *ldParsed) (any, error) {
	if p.env.OffVariation == nil {
		return nil, nil
	}
	return p.variation(*p.env.OffVariation, p.envPath+".offVariation")
}

func (p *ldParsed) variation(i int, path string) (any, error) {
	if i < 0 || i >= len(p.names) {
		return nil, flagError(p.key, path, "variation %d does not exist (the flag has %d)", i, len(p.names))
	}
	return p.names[i], nil
}

// expr builds the JsonLogic expression choosing p's variant: prerequisites,
// individual targets, rules in order, then the fallthrough (null when it is
// the default variant and explicit is false). report is false when p is
// being inlined as another flag's prerequisite, so notes are not repeated.
func (l *ldConverter) expr(p *ldParsed, explicit bool, chain []string, report bool) (any, error) {
	off, err := l.offVariant(p)
	if err != nil {
		return nil, err
	}
	if !p.env.On {
		return off, nil
	}
	chain = append(chain, p.key)
	var prereqs []any
	for i, pr := range p.env.Prerequisites {
		path := index(p.envPath+".prerequisites", i)
		q, ok := l.all[pr.Key]
		if !ok {
			if report {
				l.c.note(p.key, path, SeverityChanged,
					"prerequisite %q is not in the file: imported as always met", pr.Key)
			}
			continue
		}
		if slices.Contains(chain, pr.Key) {
			return nil, flagError(p.key, path, "circular prerequisite: %s -> %s", strings.Join(chain, " -> "), pr.Key)
		}
		if len(chain) > maxPrerequisiteDepth {
			return nil, flagError(p.key, path, "prerequisites nest deeper than %d flags", maxPrerequisiteDepth)
		}
		want, err := q.variation(pr.Variation, path+".variation")
		if err != nil {
			return nil, flagError(p.key, path+".variation", "prerequisite %q has no variation %d", pr.Key, pr.Variation)
		}
		if !q.env.On {
			// LaunchDarkly treats a prerequisite that is off as failed,
			// whatever its off variation.
			return off, nil
		}
		if l.inlined += q.size; l.inlined > maxInlined {
			return nil, flagError(p.key, path, "prerequisites would copy more than %d bytes of rules into the flag", maxInlined)
		}
		sub, err := l.expr(q, true, chain, false)
		if err != nil {
			return nil, err
		}
		prereqs = append(prereqs, op("==", sub, want))
	}

	pairs, err := l.targets(p, report)
	if err != nil {
		return nil, err
	}
	for i, r := range p.env.Rules {
		path := index(p.envPath+".rules", i)
		cond, why, err := l.rule(p, r, path, report)
		if err != nil {
			return nil, err
		}
		if why != "" {
			if report {
				l.c.note(p.key, path, SeverityUnsupported, "%s: the rule never matches", why)
			}
			continue
		}
		result, err := l.varOrRollout(p, r.ldVarOrRollout, path, report)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, [2]any{cond, result})
	}
	var fallback any
	if explicit {
		if fallback, err = l.varOrRollout(p, *p.env.Fallthrough, p.envPath+".fallthrough", report); err != nil {
			return nil, err
		}
	}
	body := ifChain(pairs, fallback)
	if len(prereqs) == 0 {
		return body, nil
	}
	return ifChain([][2]any{{all(prereqs...), body}}, off), nil
}

// targets converts the individual targets of the user context kind, in
// LaunchDarkly's order (contextTargets, whose empty user entries stand for
// the matching entry of targets; or targets alone).
func (l *ldConverter) targets(p *ldParsed, report bool) ([][2]any, error) {
	var pairs [][2]any
	add := func(t ldTarget, path string) error {
		if len(t.Values) == 0 {
			return nil
		}
		name, err := p.variation(t.Variation, path+".variation")
		if err != nil {
			return err
		}
		keys := make([]any, len(t.Values))
		for i, v := range t.Values {
			keys[i] = v
		}
		pairs = append(pairs, [2]any{op("in", attr(targetingKey), keys), name})
		return nil
	}
	if len(p.env.ContextTargets) == 0 {
		for i, t := range p.env.Targets {
			if err := add(t, index(p.envPath+".targets", i)); err != nil {
				return nil, err
			}
		}
		return pairs, nil
	}
	for i, t := range p.env.ContextTargets {
		path := index(p.envPath+".contextTargets", i)
		if t.ContextKind != "" && t.ContextKind != "user" {
			if report && len(t.Values) > 0 {
				l.c.note(p.key, path, SeverityUnsupported,
					"targets context kind %q; an OFREP evaluation context is a user, so these targets never match", t.ContextKind)
			}
			continue
		}
		if len(t.Values) > 0 {
			if err := add(t, path); err != nil {
				return nil, err
			}
			continue
		}
		for j, u := range p.env.Targets {
			if u.Variation == t.Variation {
				if err := add(u, index(p.envPath+".targets", j)); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	return pairs, nil
}

// varOrRollout converts a fixed variation or a percentage rollout.
func (l *ldConverter) varOrRollout(p *ldParsed, v ldVarOrRollout, path string, report bool) (any, error) {
	if v.Variation != nil {
		return p.variation(*v.Variation, path+".variation")
	}
	if v.Rollout == nil || len(v.Rollout.Variations) == 0 {
		return nil, flagError(p.key, path, "needs a variation or a rollout with variations")
	}
	r := v.Rollout
	for i, w := range r.Variations {
		if _, err := p.variation(w.Variation, index(path+".rollout.variations", i)+".variation"); err != nil {
			return nil, err
		}
		if w.Weight < 0 {
			return nil, flagError(p.key, index(path+".rollout.variations", i)+".weight", "weight %d is negative", w.Weight)
		}
	}
	first := func() any {
		for _, w := range r.Variations {
			if w.Weight > 0 {
				return p.names[w.Variation]
			}
		}
		return p.names[r.Variations[len(r.Variations)-1].Variation]
	}
	if r.ContextKind != "" && r.ContextKind != "user" {
		if report {
			l.c.note(p.key, path+".rollout", SeverityUnsupported,
				"buckets by context kind %q, which an OFREP evaluation context lacks: like LaunchDarkly for a user context, it serves the first weighted variation", r.ContextKind)
		}
		return first(), nil
	}
	key := any(attr(targetingKey))
	if r.Kind != "experiment" && r.BucketBy != "" {
		name, why, changed := ldAttribute(r.BucketBy, r.ContextKind)
		if why != "" {
			return nil, flagError(p.key, path+".rollout.bucketBy", "%s", why)
		}
		if changed != "" && report {
			l.c.note(p.key, path+".rollout.bucketBy", SeverityChanged, "%s", changed)
		}
		key = attr(name)
	}
	var seed any
	if r.Seed != nil {
		seed = *r.Seed
	}
	bucket := op("ld_bucket", key, p.key, p.env.Salt, seed)
	var pairs [][2]any
	sum := 0
	for _, w := range r.Variations {
		if w.Weight == 0 {
			continue
		}
		sum += w.Weight
		pairs = append(pairs, [2]any{op("<", bucket, sum), p.names[w.Variation]})
	}
	// LaunchDarkly puts a bucket past the last weight in the last variation.
	return ifChain(pairs, p.names[r.Variations[len(r.Variations)-1].Variation]), nil
}

// rule converts a rule's clauses (all must match). why is non-empty when a
// clause cannot be converted.
func (l *ldConverter) rule(p *ldParsed, r ldRule, path string, report bool) (cond any, why string, err error) {
	var conds []any
	for i, c := range r.Clauses {
		cpath := index(path+".clauses", i)
		e, why, err := l.clause(p, c, cpath, report)
		if err != nil || why != "" {
			return nil, why, err
		}
		conds = append(conds, e)
	}
	return all(conds...), "", nil
}

// ldAttribute maps a clause attribute to an evaluation context attribute.
// LaunchDarkly's "key" is OFREP's targetingKey; with a context kind the
// attribute is a reference ("/address/city"), without one a literal name.
func ldAttribute(attribute, contextKind string) (name, why, changed string) {
	parts := []string{attribute}
	if contextKind != "" && strings.HasPrefix(attribute, "/") {
		parts = strings.Split(attribute[1:], "/")
		for i, s := range parts {
			parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
		}
	}
	for _, s := range parts {
		if s == "" {
			return "", fmt.Sprintf("attribute %q is not a valid reference", attribute), ""
		}
		if strings.Contains(s, ".") {
			changed = fmt.Sprintf("attribute name %q contains a dot, which targeting reads as a nested path", s)
		}
	}
	if len(parts) == 1 && parts[0] == "key" {
		return targetingKey, "", ""
	}
	return strings.Join(parts, "."), "", changed
}

func (l *ldConverter) clause(p *ldParsed, c ldClause, path string, report bool) (any, string, error) {
	if c.Op == "" {
		return nil, "", flagError(p.key, path+".op", "the clause has no operator")
	}
	if c.ContextKind != "" && c.ContextKind != "user" {
		return nil, fmt.Sprintf("clause on context kind %q, which an OFREP evaluation context never is", c.ContextKind), nil
	}
	if c.Attribute == "kind" {
		// Every OFREP context is a single user context.
		matched := false
		for _, v := range c.Values {
			if v == "user" {
				matched = true
			}
		}
		return matched != c.Negate, "", nil
	}
	if c.Op == "segmentMatch" {
		return nil, "segments are not part of the flag JSON (segmentMatch)", nil
	}
	name, why, changed := ldAttribute(c.Attribute, c.ContextKind)
	if why != "" {
		return nil, "", flagError(p.key, path+".attribute", "%s", why)
	}
	if changed != "" && report {
		l.c.note(p.key, path+".attribute", SeverityChanged, "%s", changed)
	}
	v := attr(name)
	var ors []any
	guard := c.Negate
	switch c.Op {
	case "in":
		var list []any
		for i, val := range c.Values {
			switch val.(type) {
			case string, float64, bool:
				list = append(list, val)
			default:
				return nil, "", flagError(p.key, index(path+".values", i), "\"in\" compares with strings, numbers or booleans")
			}
		}
		if len(list) > 0 {
			ors = append(ors, op("in", v, list))
		}
	case "startsWith", "endsWith", "contains":
		for _, val := range c.Values {
			s, ok := val.(string)
			if !ok {
				continue // LaunchDarkly never matches a non-string value
			}
			switch c.Op {
			case "startsWith":
				ors = append(ors, op("starts_with", v, s))
			case "endsWith":
				ors = append(ors, op("ends_with", v, s))
			default:
				ors = append(ors, op("in", s, v))
			}
		}
	case "matches":
		for i, val := range c.Values {
			s, ok := val.(string)
			if !ok {
				continue
			}
			e, ok := regexSubset(s, v)
			if !ok {
				return nil, fmt.Sprintf("regular expression %q (values[%d]) is not a plain literal with optional ^ and $ anchors", s, i), nil
			}
			ors = append(ors, e)
		}
	case "lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual":
		sym := map[string]string{"lessThan": "<", "lessThanOrEqual": "<=", "greaterThan": ">", "greaterThanOrEqual": ">="}[c.Op]
		for _, val := range c.Values {
			if n, ok := val.(float64); ok {
				ors = append(ors, op(sym, v, n))
			}
		}
		guard = true
	case "before", "after":
		sym := map[string]string{"before": "<", "after": ">"}[c.Op]
		for _, val := range c.Values {
			if ms, ok := ldMillis(val); ok {
				ors = append(ors, op(sym, v, ms))
			}
		}
		guard = true
		if report {
			l.c.note(p.key, path, SeverityChanged,
				"%q compares the attribute as Unix milliseconds; LaunchDarkly also accepts RFC 3339 date strings, which never match here", c.Op)
		}
	case "semVerEqual", "semVerLessThan", "semVerGreaterThan":
		sym := map[string]string{"semVerEqual": "=", "semVerLessThan": "<", "semVerGreaterThan": ">"}[c.Op]
		for _, val := range c.Values {
			s, ok := val.(string)
			if !ok {
				continue
			}
			if ver, ok := fullSemver(s); ok {
				ors = append(ors, op("sem_ver", v, sym, ver))
			}
		}
		if report {
			l.c.note(p.key, path, SeverityChanged,
				"%q needs a full major.minor.patch attribute value; LaunchDarkly also reads \"2\" or \"2.1\" as 2.0.0 and 2.1.0", c.Op)
		}
	default:
		return nil, "", flagError(p.key, path+".op", "unknown operator %q", c.Op)
	}
	e := any_(ors...)
	if c.Negate {
		e = not(e)
	}
	// A missing attribute never matches in LaunchDarkly, negated or not.
	if guard {
		e = all(present(name), e)
	}
	return e, "", nil
}

// regexSubset converts the regular expressions JsonLogic can express: a
// literal, optionally anchored with ^ and $.
func regexSubset(pattern string, v any) (any, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, false
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	begin, end := false, false
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		begin, subs = true, subs[1:]
	}
	if len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText {
		end, subs = true, subs[:len(subs)-1]
	}
	lit := ""
	switch {
	case len(subs) == 0:
	case len(subs) == 1 && subs[0].Op == syntax.OpLiteral && subs[0].Flags&syntax.FoldCase == 0:
		lit = string(subs[0].Rune)
	default:
		return nil, false
	}
	switch {
	case begin && end:
		return op("==", v, lit), true
	case begin:
		return op("starts_with", v, lit), true
	case end:
		return op("ends_with", v, lit), true
	}
	return op("in", lit, v), true
}

// ldMillis reads a before/after clause value: Unix milliseconds or an
// RFC 3339 timestamp.
func ldMillis(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return 0, false
		}
		return float64(t.UnixMilli()), true
	}
	return 0, false
}

// fullSemver completes LaunchDarkly's lenient versions ("2", "2.1") to
// major.minor.patch, keeping any pre-release or build suffix.
func fullSemver(s string) (string, bool) {
	core, rest := s, ""
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		core, rest = s[:i], s[i:]
	}
	parts := strings.Split(core, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return "", false
	}
	for _, part := range parts {
		if _, err := strconv.ParseUint(part, 10, 64); err != nil {
			return "", false
		}
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	return strings.Join(parts, ".") + rest, true
}
