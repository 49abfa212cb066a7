package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/switchyard-dev/switchyard"
)

// Unleash files come in three shapes, all read here: the export of Unleash
// 5+ (features, featureStrategies, featureEnvironments, segments), the
// state export of Unleash 4 (the same plus featureStrategySegments), and the
// client API payload (features with their strategies and variants inline,
// segments with their constraints).
type unleashFile struct {
	Features                []json.RawMessage `json:"features"`
	FeatureStrategies       []json.RawMessage `json:"featureStrategies"`
	FeatureEnvironments     []json.RawMessage `json:"featureEnvironments"`
	Segments                []json.RawMessage `json:"segments"`
	FeatureStrategySegments []struct {
		FeatureStrategyID string `json:"featureStrategyId"`
		SegmentID         int    `json:"segmentId"`
	} `json:"featureStrategySegments"`
	Dependencies []struct {
		Feature      string              `json:"feature"`
		Dependencies []unleashDependency `json:"dependencies"`
	} `json:"dependencies"`
}

type unleashFeature struct {
	Name         string              `json:"name"`
	Description  string              `json:"description"`
	Enabled      *bool               `json:"enabled"`
	Archived     bool                `json:"archived"`
	Strategies   []unleashStrategy   `json:"strategies"`
	Variants     []unleashVariant    `json:"variants"`
	Dependencies []unleashDependency `json:"dependencies"`
}

type unleashDependency struct {
	Feature string `json:"feature"`
}

type unleashStrategy struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	FeatureName string              `json:"featureName"`
	Environment string              `json:"environment"`
	Parameters  map[string]any      `json:"parameters"`
	Constraints []unleashConstraint `json:"constraints"`
	Segments    []int               `json:"segments"`
	Variants    []unleashVariant    `json:"variants"`
	Disabled    bool                `json:"disabled"`
	SortOrder   int                 `json:"sortOrder"`
	path        string
}

type unleashConstraint struct {
	ContextName     string   `json:"contextName"`
	Operator        string   `json:"operator"`
	Values          []string `json:"values"`
	Value           any      `json:"value"`
	CaseInsensitive bool     `json:"caseInsensitive"`
	Inverted        bool     `json:"inverted"`
}

type unleashVariant struct {
	Name       string `json:"name"`
	Weight     int    `json:"weight"`
	Stickiness string `json:"stickiness"`
	Payload    *struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"payload"`
	Overrides []struct {
		ContextName string   `json:"contextName"`
		Values      []string `json:"values"`
	} `json:"overrides"`
}

type unleashSegment struct {
	ID          int                  `json:"id"`
	Name        string               `json:"name"`
	Constraints *[]unleashConstraint `json:"constraints"`
}

type unleashFeatureEnv struct {
	Enabled     bool             `json:"enabled"`
	FeatureName string           `json:"featureName"`
	Environment string           `json:"environment"`
	Variants    []unleashVariant `json:"variants"`
}

// The seeds and normalizers of Unleash's client specification.
const (
	unleashStrategyNormalizer = 100
	unleashStrategySeed       = 0
	unleashVariantSeed        = 86028157
)

// decodeNamed decodes one item of a list whose name field names the flag,
// so every error says which flag it is about.
func decodeNamed(raw json.RawMessage, path, nameField string, v any) (string, error) {
	var head map[string]json.RawMessage
	if err := json.Unmarshal(raw, &head); err != nil {
		return "", decodeError("", path, err)
	}
	var name string
	if n, ok := head[nameField]; ok {
		if err := json.Unmarshal(n, &name); err != nil {
			return "", decodeError("", joinPath(path, nameField), err)
		}
	}
	if name == "" {
		return "", fileError(path, "has no %q", nameField)
	}
	if err := checkDepth(name, path, raw); err != nil {
		return "", err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return "", decodeError(name, path, err)
	}
	return name, nil
}

func importUnleash(content []byte, opts Options, c *converted) error {
	// Each item's depth is checked where it is decoded, so the error can
	// name its flag; the lists themselves decode without recursion.
	var file unleashFile
	dec := json.NewDecoder(bytes.NewReader(content))
	if err := dec.Decode(&file); err != nil {
		return decodeError("", "", err)
	}
	if file.Features == nil {
		return fileError("", "not an Unleash export: expected a \"features\" list")
	}

	segments := map[int]unleashSegment{}
	for i, raw := range file.Segments {
		var s unleashSegment
		if err := json.Unmarshal(raw, &s); err != nil {
			return decodeError("", index("segments", i), err)
		}
		segments[s.ID] = s
	}
	strategySegments := map[string][]int{}
	for _, fs := range file.FeatureStrategySegments {
		strategySegments[fs.FeatureStrategyID] = append(strategySegments[fs.FeatureStrategyID], fs.SegmentID)
	}

	envNames := map[string]bool{}
	strategies := map[string][]unleashStrategy{}
	for i, raw := range file.FeatureStrategies {
		var s unleashStrategy
		path := index("featureStrategies", i)
		if _, err := decodeNamed(raw, path, "featureName", &s); err != nil {
			return err
		}
		s.path = path
		s.Segments = append(s.Segments, strategySegments[s.ID]...)
		if s.Environment != "" {
			envNames[s.Environment] = true
		}
		strategies[s.FeatureName] = append(strategies[s.FeatureName], s)
	}
	featureEnvs := map[string][]unleashFeatureEnv{}
	for i, raw := range file.FeatureEnvironments {
		var fe unleashFeatureEnv
		if _, err := decodeNamed(raw, index("featureEnvironments", i), "featureName", &fe); err != nil {
			return err
		}
		if fe.Environment != "" {
			envNames[fe.Environment] = true
		}
		featureEnvs[fe.FeatureName] = append(featureEnvs[fe.FeatureName], fe)
	}
	env := opts.Environment
	if env == "" && len(envNames) > 1 {
		return switchyard.Errorf(switchyard.CodeInvalidRequest,
			"the file holds several environments (%s): choose one with --environment",
			strings.Join(sortedKeys(envNames), ", ")).With("environments", sortedKeys(envNames))
	}
	if env == "" {
		for name := range envNames {
			env = name
		}
	} else if len(envNames) > 0 && !envNames[env] {
		return fileError("", "the file has no environment %q (it has %s)", env, strings.Join(sortedKeys(envNames), ", "))
	}
	dependencies := map[string][]unleashDependency{}
	for _, d := range file.Dependencies {
		dependencies[d.Feature] = append(dependencies[d.Feature], d.Dependencies...)
	}

	for i, raw := range file.Features {
		var f unleashFeature
		path := index("features", i)
		if _, err := decodeNamed(raw, path, "name", &f); err != nil {
			return err
		}
		u := &unleashConverter{c: c, feature: f, segments: segments, path: path}
		if f.Archived {
			c.note(f.Name, path, SeverityUnsupported, "archived in Unleash: not imported")
			continue
		}
		enabled := f.Enabled != nil && *f.Enabled
		variants := f.Variants
		for _, fe := range featureEnvs[f.Name] {
			if fe.Environment == "" || fe.Environment == env {
				enabled = fe.Enabled
				if len(fe.Variants) > 0 {
					variants = fe.Variants
				}
			}
		}
		var strats []unleashStrategy
		for j, s := range f.Strategies {
			s.path = index(path+".strategies", j)
			strats = append(strats, s)
		}
		for _, s := range strategies[f.Name] {
			if s.Environment == "" || s.Environment == env {
				strats = append(strats, s)
			}
		}
		slices.SortStableFunc(strats, func(a, b unleashStrategy) int { return a.SortOrder - b.SortOrder })
		for _, d := range append(f.Dependencies, dependencies[f.Name]...) {
			c.note(f.Name, path, SeverityUnsupported,
				"depends on feature %q; dependencies are not imported, so the flag evaluates as if the parent were enabled", d.Feature)
		}
		flag, err := u.convert(enabled, strats, variants, path)
		if err != nil {
			return err
		}
		if err := c.add(f.Name, path, flag); err != nil {
			return err
		}
	}
	return nil
}

type unleashConverter struct {
	c        *converted
	feature  unleashFeature
	path     string
	segments map[int]unleashSegment
	// For features with variants: the object flag's variants.
	variants map[string]any
	names    variantNames
}

func (u *unleashConverter) name() string { return u.feature.Name }

func (u *unleashConverter) convert(enabled bool, strats []unleashStrategy, variants []unleashVariant, path string) (switchyard.Flag, error) {
	f := switchyard.Flag{State: switchyard.StateEnabled}
	if u.feature.Description != "" {
		f.Metadata = map[string]any{"description": u.feature.Description}
	}
	withVariants := len(variants) > 0
	var active []unleashStrategy
	for _, s := range strats {
		if s.Disabled {
			continue
		}
		active = append(active, s)
		if len(s.Variants) > 0 {
			withVariants = true
		}
	}
	var on, off any = "on", "off"
	if withVariants {
		u.variants = map[string]any{}
		off = u.addVariant("disabled", map[string]any{"name": "disabled", "enabled": false, "feature_enabled": false})
		u.c.note(u.name(), path+".variants", SeverityChanged,
			"Unleash variants: imported as an object flag; evaluate it as an object: \"name\" and \"payload\" are what getVariant returns, \"feature_enabled\" is what isEnabled returns")
	}
	var rule any = off
	if enabled {
		var pairs [][2]any
		for _, s := range active {
			cond, why, err := u.strategy(s)
			if err != nil {
				return f, err
			}
			if why != "" {
				u.c.note(u.name(), s.path, SeverityUnsupported, "%s: the strategy never matches", why)
				cond = false
			}
			if withVariants {
				on, err = u.variantFor(s, variants)
				if err != nil {
					return f, err
				}
			}
			pairs = append(pairs, [2]any{cond, on})
		}
		if len(active) == 0 {
			// A feature without strategies is on for everyone.
			pairs = [][2]any{{true, on}}
			if withVariants {
				var err error
				if pairs[0][1], err = u.variantFor(unleashStrategy{}, variants); err != nil {
					return f, err
				}
			}
		}
		if !withVariants {
			// Several strategies serving "on" read better as one "or".
			conds := make([]any, len(pairs))
			for i, p := range pairs {
				conds[i] = p[0]
			}
			pairs = [][2]any{{any_(conds...), on}}
		}
		rule = ifChain(pairs, nil)
	}
	if withVariants {
		f.Variants = u.variants
	} else {
		f.Variants = map[string]any{"on": true, "off": false}
	}
	def := off.(string)
	f.DefaultVariant = &def
	switch r := rule.(type) {
	case nil:
	case string:
		f.DefaultVariant = &r
	default:
		var err error
		if f.Targeting, err = marshalTargeting(rule); err != nil {
			return f, err
		}
	}
	return f, nil
}

// addVariant registers an object variant and returns its key; an identical
// variant (same name, same payload) reuses its key.
func (u *unleashConverter) addVariant(name string, value map[string]any) string {
	want, _ := json.Marshal(value)
	for k, v := range u.variants {
		if got, _ := json.Marshal(v); bytes.Equal(got, want) {
			return k
		}
	}
	key := u.names.take(name)
	u.variants[key] = value
	return key
}

// variantFor is what an enabled strategy serves on a feature with variants:
// the strategy's own variants, else the feature's, else "no variant".
func (u *unleashConverter) variantFor(s unleashStrategy, featureVariants []unleashVariant) (any, error) {
	none := u.addVariant("no-variant", map[string]any{"name": "disabled", "enabled": false, "feature_enabled": true})
	if len(s.Variants) > 0 && totalWeight(s.Variants) > 0 {
		group := paramString(s.Parameters, "groupId")
		if group == "" {
			group = u.name()
		}
		stickiness := s.Variants[0].Stickiness
		if stickiness == "" {
			stickiness = paramString(s.Parameters, "stickiness")
		}
		return u.pickVariant(group, stickiness, s.Variants, s.path+".variants", none)
	}
	stickiness := ""
	if len(featureVariants) > 0 {
		stickiness = featureVariants[0].Stickiness
	}
	return u.pickVariant(u.name(), stickiness, featureVariants, u.path+".variants", none)
}

func totalWeight(vs []unleashVariant) int {
	t := 0
	for _, v := range vs {
		t += v.Weight
	}
	return t
}

// pickVariant reproduces Unleash's variant selection: overrides first, then
// normalizedHash(stickiness value, groupId, total weight, seed 86028157)
// against the cumulative weights.
func (u *unleashConverter) pickVariant(group, stickiness string, vs []unleashVariant, path string, none string) (any, error) {
	total := totalWeight(vs)
	if total <= 0 {
		return none, nil
	}
	keys := make([]string, len(vs))
	for i, v := range vs {
		if v.Weight < 0 {
			return nil, flagError(u.name(), index(path, i)+".weight", "weight %d is negative", v.Weight)
		}
		if strings.TrimSpace(v.Name) == "" {
			return nil, flagError(u.name(), index(path, i)+".name", "a variant needs a name")
		}
		value := map[string]any{"name": v.Name, "enabled": true, "feature_enabled": true}
		if v.Payload != nil {
			value["payload"] = map[string]any{"type": v.Payload.Type, "value": v.Payload.Value}
		}
		keys[i] = u.addVariant(v.Name, value)
	}
	var pairs [][2]any
	for i, v := range vs {
		for _, o := range v.Overrides {
			vals := make([]any, 0, len(o.Values))
			for _, s := range o.Values {
				vals = append(vals, s)
			}
			pairs = append(pairs, [2]any{op("in", attr(unleashContextName(o.ContextName)), vals), keys[i]})
		}
	}
	last := ""
	for i, v := range vs {
		if v.Weight > 0 {
			last = keys[i]
		}
	}
	pick := func(value any) any {
		h := op("unleash_hash", value, group, total, unleashVariantSeed)
		var chain [][2]any
		sum := 0
		for i, v := range vs {
			if v.Weight == 0 {
				continue
			}
			sum += v.Weight
			if sum >= total {
				break
			}
			chain = append(chain, [2]any{op("<=", h, sum), keys[i]})
		}
		return ifChain(chain, last)
	}
	var first any
	for i, v := range vs {
		if v.Weight > 0 {
			first = keys[i]
			break
		}
	}
	u.c.note(u.name(), path, SeverityChanged,
		"contexts without a stickiness value get variant %q; Unleash picks one at random for them", first)
	var ids []string
	switch stickiness {
	case "", "default", "random":
		ids = []string{targetingKey, "sessionId", "remoteAddress"}
	default:
		ids = []string{unleashContextName(stickiness)}
	}
	for _, id := range ids {
		pairs = append(pairs, [2]any{attr(id), pick(attr(id))})
	}
	return ifChain(pairs, first), nil
}

// unleashContextName maps an Unleash context field to an evaluation context
// attribute: userId is OFREP's targetingKey, the rest keep their names
// (custom properties included).
func unleashContextName(name string) string {
	if name == "userId" {
		return targetingKey
	}
	return name
}

func paramString(params map[string]any, key string) string {
	switch v := params[key].(type) {
	case string:
		return strings.TrimSpace(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// strategy converts a strategy's constraints, segments and activation rule.
// why is non-empty when part of it cannot be converted.
func (u *unleashConverter) strategy(s unleashStrategy) (any, string, error) {
	var conds []any
	for i, c := range s.Constraints {
		e, why, err := u.constraint(c, index(s.path+".constraints", i))
		if err != nil || why != "" {
			return nil, why, err
		}
		conds = append(conds, e)
	}
	for _, id := range s.Segments {
		seg, ok := u.segments[id]
		if !ok {
			return nil, fmt.Sprintf("segment %d is not in the file", id), nil
		}
		if seg.Constraints == nil {
			return nil, fmt.Sprintf("segment %q (%d) is listed without its constraints (export it with GET /api/admin/segments and add them)", seg.Name, id), nil
		}
		for i, c := range *seg.Constraints {
			e, why, err := u.constraint(c, fmt.Sprintf("segments[id=%d].constraints[%d]", id, i))
			if err != nil || why != "" {
				return nil, why, err
			}
			conds = append(conds, e)
		}
	}
	groupID := paramString(s.Parameters, "groupId")
	if groupID == "" {
		groupID = u.name()
	}
	var act any
	switch s.Name {
	case "default":
		act = true
	case "userWithId":
		var ids []any
		for _, id := range strings.Split(paramString(s.Parameters, "userIds"), ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
		act = false
		if len(ids) > 0 {
			act = op("in", attr(targetingKey), ids)
		}
	case "remoteAddress":
		var ips []any
		for _, ip := range strings.Split(paramString(s.Parameters, "IPs"), ",") {
			ip = strings.TrimSpace(ip)
			if ip == "" {
				continue
			}
			if _, _, err := net.ParseCIDR(ip); err == nil && !strings.HasSuffix(ip, "/32") {
				u.c.note(u.name(), s.path+".parameters.IPs", SeverityUnsupported,
					"address range %s: only exact addresses are imported, so addresses in the range no longer match", ip)
				continue
			}
			ips = append(ips, strings.TrimSuffix(ip, "/32"))
		}
		act = false
		if len(ips) > 0 {
			act = op("in", attr("remoteAddress"), ips)
		}
	case "flexibleRollout", "gradualRolloutUserId", "gradualRolloutSessionId", "gradualRolloutRandom":
		pctKey, stickiness := "rollout", paramString(s.Parameters, "stickiness")
		switch s.Name {
		case "gradualRolloutUserId":
			pctKey, stickiness = "percentage", "userId"
		case "gradualRolloutSessionId":
			pctKey, stickiness = "percentage", "sessionId"
		case "gradualRolloutRandom":
			pctKey, stickiness = "percentage", "random"
		}
		pct, err := strconv.ParseFloat(paramString(s.Parameters, pctKey), 64)
		if err != nil || math.IsNaN(pct) {
			return nil, "", flagError(u.name(), s.path+".parameters."+pctKey, "the rollout percentage %q is not a number", paramString(s.Parameters, pctKey))
		}
		act = u.rollout(s, groupID, stickiness, pct)
	case "applicationHostname":
		return nil, "strategy applicationHostname depends on the host running the application", nil
	default:
		return nil, fmt.Sprintf("custom strategy %q has no equivalent", s.Name), nil
	}
	return all(append(conds, act)...), "", nil
}

// rollout reproduces flexibleRollout: normalizedHash(stickiness value,
// groupId, 100, seed 0) <= rollout, for a rollout above 0.
func (u *unleashConverter) rollout(s unleashStrategy, group, stickiness string, pct float64) any {
	if pct <= 0 {
		return false
	}
	in := func(name string) any {
		if pct >= unleashStrategyNormalizer {
			return true
		}
		return op("<=", op("unleash_hash", attr(name), group, unleashStrategyNormalizer, unleashStrategySeed), pct)
	}
	randomly := func() any {
		if pct >= unleashStrategyNormalizer {
			return true
		}
		u.c.note(u.name(), s.path, SeverityChanged,
			"contexts with neither a targetingKey nor a sessionId are never in the %g%% rollout; Unleash includes them at random", pct)
		return false
	}
	switch stickiness {
	case "", "default":
		return ifChain([][2]any{{attr(targetingKey), in(targetingKey)}, {attr("sessionId"), in("sessionId")}}, randomly())
	case "random":
		if pct >= unleashStrategyNormalizer {
			return true
		}
		u.c.note(u.name(), s.path, SeverityChanged,
			"random stickiness: the %g%% rollout is now sticky by targetingKey (then sessionId) instead of drawn on every evaluation", pct)
		return ifChain([][2]any{{attr(targetingKey), in(targetingKey)}, {attr("sessionId"), in("sessionId")}}, false)
	}
	name := unleashContextName(stickiness)
	return ifChain([][2]any{{attr(name), in(name)}}, false)
}

func cleanValues(values []string) []any {
	var out []any
	for _, v := range values {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (u *unleashConverter) constraint(c unleashConstraint, path string) (any, string, error) {
	if c.ContextName == "" {
		return nil, "", flagError(u.name(), path+".contextName", "the constraint names no context field")
	}
	name := unleashContextName(c.ContextName)
	v := attr(name)
	var e any
	switch c.Operator {
	case "IN", "NOT_IN":
		e = false
		if vals := cleanValues(c.Values); len(vals) > 0 {
			e = op("in", v, vals)
		}
		if c.Operator == "NOT_IN" {
			e = not(e)
		}
	case "STR_STARTS_WITH", "STR_ENDS_WITH", "STR_CONTAINS":
		var ors []any
		letters := false
		for _, s := range cleanValues(c.Values) {
			str := s.(string)
			letters = letters || strings.IndexFunc(str, unicode.IsLetter) >= 0
			switch c.Operator {
			case "STR_STARTS_WITH":
				ors = append(ors, op("starts_with", v, str))
			case "STR_ENDS_WITH":
				ors = append(ors, op("ends_with", v, str))
			default:
				ors = append(ors, op("in", str, v))
			}
		}
		if c.CaseInsensitive && letters {
			u.c.note(u.name(), path, SeverityChanged,
				"case-insensitive %s became case-sensitive: values match only in the case written", c.Operator)
		}
		e = any_(ors...)
	case "NUM_EQ", "NUM_GT", "NUM_GTE", "NUM_LT", "NUM_LTE":
		sym := map[string]string{"NUM_EQ": "==", "NUM_GT": ">", "NUM_GTE": ">=", "NUM_LT": "<", "NUM_LTE": "<="}[c.Operator]
		n, ok := constraintNumber(c.Value)
		if !ok {
			e = false // Unleash never matches a value that is not a number
			break
		}
		e = all(present(name), op(sym, v, n))
	case "SEMVER_EQ", "SEMVER_GT", "SEMVER_LT":
		sym := map[string]string{"SEMVER_EQ": "=", "SEMVER_GT": ">", "SEMVER_LT": "<"}[c.Operator]
		s, _ := c.Value.(string)
		if s == "" {
			return nil, "", flagError(u.name(), path+".value", "%s needs a version", c.Operator)
		}
		e = op("sem_ver", v, sym, s)
	case "DATE_AFTER", "DATE_BEFORE":
		// Unleash compares the current time, which flagd targeting reads
		// as $flagd.timestamp (Unix seconds).
		s, _ := c.Value.(string)
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
		if err != nil {
			return nil, "", flagError(u.name(), path+".value", "%s needs an RFC 3339 date, not %q", c.Operator, s)
		}
		secs := float64(t.UnixNano()) / 1e9
		if c.Operator == "DATE_AFTER" {
			e = op(">", attr("$flagd.timestamp"), secs)
		} else {
			e = op("<", attr("$flagd.timestamp"), secs)
		}
	default:
		return nil, "", flagError(u.name(), path+".operator", "unknown operator %q", c.Operator)
	}
	if c.Inverted {
		e = not(e)
	}
	return e, "", nil
}

func constraintNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		n, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return n, err == nil && !math.IsNaN(n) && !math.IsInf(n, 0)
	}
	return 0, false
}
