package jsonlogic

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/twmb/murmur3"
)

// flagd's fractional operation: a deterministic, weighted split of users
// into buckets, bit-for-bit the same as flagd's current bucketing (murmur3
// x86_32 with seed 0 over the bucketing key; bucket = (hash * total
// weight) >> 32), so a rollout migrated from flagd keeps the same users.
//
//	{"fractional": [<bucketing key>, [<variant>, <weight>], ...]}
//
// The bucketing key is optional: without it, or when it evaluates to null,
// flagd buckets on $flagd.flagKey + targetingKey and gives null when there
// is no targeting key. Variants and weights may be expressions; negative
// weights count as 0 and a missing weight as 1.

const maxTotalWeight = math.MaxInt32

type bucket struct {
	variant expr
	weight  expr
}

// bucketKey computes the bucketing key into a buffer; implicit when the
// rule gives none.
type bucketKey struct {
	implicit bool
	literal  string
	isExpr   bool
	expr     evalFunc
	// cat holds the parts of a {"cat": [...]} key, appended straight into
	// the hash input instead of building a string.
	cat []expr
}

func compileFractional(c *compiler, args any, path string, depth int) (expr, error) {
	a, ok := args.([]any)
	if !ok || len(a) == 0 {
		return expr{}, errorAt(path, "takes an optional bucketing key and at least one bucket [variant, weight]")
	}
	key, rest, err := c.bucketingKey(a[0], path+"[0]", depth)
	if err != nil {
		return expr{}, err
	}
	offset := len(a) - len(a[rest:])
	a = a[rest:]
	if len(a) == 0 {
		return expr{}, errorAt(path, "needs at least one bucket [variant, weight]")
	}
	buckets := make([]bucket, len(a))
	constWeights := true
	var total int64
	for i, raw := range a {
		p := fmt.Sprintf("%s[%d]", path, i+offset)
		b, err := c.bucket(raw, p, depth)
		if err != nil {
			return expr{}, err
		}
		buckets[i] = b
		if !b.weight.konst {
			constWeights = false
			continue
		}
		if total += clampWeight(b.weight.val); total > maxTotalWeight {
			return expr{}, errorAt(path, "the weights add up to more than %d", maxTotalWeight)
		}
	}
	if constWeights && allConstant(variants(buckets)) {
		weights := make([]int64, len(buckets))
		for i, b := range buckets {
			weights[i] = clampWeight(b.weight.val)
		}
		return expr{eval: func(e env) (Value, error) {
			h, ok, err := key.hash(e)
			if err != nil || !ok || total == 0 {
				return null, err
			}
			return buckets[pick(h, total, weights)].variant.val, nil
		}}, nil
	}
	return expr{eval: func(e env) (Value, error) { return evalFractional(e, key, buckets) }}, nil
}

func variants(bs []bucket) []expr {
	out := make([]expr, len(bs))
	for i, b := range bs {
		out[i] = b.variant
	}
	return out
}

// bucketingKey compiles the first argument of fractional, returning how
// many arguments it used (0 when the first is already a bucket).
func (c *compiler) bucketingKey(first any, path string, depth int) (bucketKey, int, error) {
	switch f := first.(type) {
	case string:
		return bucketKey{literal: f}, 1, nil
	case nil:
		return bucketKey{implicit: true}, 1, nil
	case []any:
		return bucketKey{implicit: true}, 0, nil
	case map[string]any:
		if catArgs, ok := f["cat"]; ok && len(f) == 1 {
			if err := c.count(1, path); err != nil {
				return bucketKey{}, 0, err
			}
			parts, err := c.args(catArgs, path+".cat", depth+1, 1, -1)
			if err != nil {
				return bucketKey{}, 0, err
			}
			k := bucketKey{cat: parts}
			if allConstant(parts) {
				// Built once, here, unless that takes the document past
				// its budget for folding: then at each evaluation.
				var buf [256]byte
				b, err := k.appendCat(env{b: &c.folding}, buf[:0])
				switch {
				case errors.Is(err, ErrBudget):
					return k, 1, nil
				case err != nil:
					return bucketKey{}, 0, errorAt(path, "%v", err)
				}
				return bucketKey{literal: string(b)}, 1, nil
			}
			return k, 1, nil
		}
		x, err := c.compile(f, path, depth)
		if err != nil {
			return bucketKey{}, 0, err
		}
		return bucketKey{isExpr: true, expr: x.eval}, 1, nil
	}
	return bucketKey{}, 0, errorAt(path, "the bucketing key must be a string or an expression, not %s", jsonType(first))
}

// bucket compiles one [variant, weight] pair.
func (c *compiler) bucket(raw any, path string, depth int) (bucket, error) {
	pair, ok := raw.([]any)
	if !ok || len(pair) == 0 || len(pair) > 2 {
		return bucket{}, errorAt(path, "a bucket is [variant] or [variant, weight]")
	}
	v, err := c.compile(pair[0], path+"[0]", depth+1)
	if err != nil {
		return bucket{}, err
	}
	if v.konst && !isVariantKind(v.val.k) {
		return bucket{}, errorAt(path+"[0]", "a variant is a string, boolean, number or null, not %s", v.val.k)
	}
	b := bucket{variant: v, weight: constant(numberValue(1))}
	if len(pair) == 1 {
		return b, nil
	}
	wp := path + "[1]"
	switch w := pair[1].(type) {
	case nil:
	case float64:
		if w != float64(int64(w)) {
			return bucket{}, errorAt(wp, "a weight is a whole number, not %v", w)
		}
		if int64(w) > maxTotalWeight {
			return bucket{}, errorAt(wp, "a weight is at most %d", maxTotalWeight)
		}
		b.weight = constant(numberValue(w))
	case map[string]any:
		x, err := c.compile(w, wp, depth+1)
		if err != nil {
			return bucket{}, err
		}
		b.weight = x
	default:
		return bucket{}, errorAt(wp, "a weight is a number or an expression, not %s", jsonType(w))
	}
	return b, nil
}

func isVariantKind(k Kind) bool {
	return k == KindString || k == KindBool || k == KindNumber || k == KindNull
}

// clampWeight is the weight of a valid constant: negative weights count
// as 0, null as 1.
func clampWeight(v Value) int64 {
	if v.k == KindNull {
		return 1
	}
	return max(int64(v.n), 0)
}

// evalFractional is fractional with variants or weights computed per
// call. As in flagd, every argument is evaluated first; any invalid
// variant or weight makes the result null.
func evalFractional(e env, key bucketKey, buckets []bucket) (Value, error) {
	var vbuf [8]Value
	var wbuf [8]int64
	vs, ws := vbuf[:0], wbuf[:0]
	valid := true
	var total int64
	for _, b := range buckets {
		v, err := b.variant.eval(e)
		if err != nil {
			return null, err
		}
		w, err := b.weight.eval(e)
		if err != nil {
			return null, err
		}
		weight, ok := dynamicWeight(w)
		valid = valid && ok && isVariantKind(v.k)
		total += weight
		vs, ws = append(vs, v), append(ws, weight)
	}
	hash, ok, err := key.hash(e)
	if err != nil || !ok || !valid || total == 0 || total > maxTotalWeight {
		return null, err
	}
	return vs[pick(hash, total, ws)], nil
}

// dynamicWeight validates a computed weight as flagd does: a whole number
// (negative counts as 0) or null (1); anything else is invalid.
func dynamicWeight(w Value) (int64, bool) {
	switch w.k {
	case KindNull:
		return 1, true
	case KindNumber:
		n := int64(w.n)
		if w.n != float64(n) || n > maxTotalWeight {
			return 0, false
		}
		return max(n, 0), true
	}
	return 0, false
}

// pick maps a 32-bit hash onto [0, total) and returns the bucket holding
// that point.
func pick(hash uint32, total int64, weights []int64) int {
	point := (uint64(hash) * uint64(total)) >> 32
	var end uint64
	for i, w := range weights {
		end += uint64(w)
		if point < end {
			return i
		}
	}
	return len(weights) - 1
}

// hash hashes the bucketing key; ok is false when there is none (no
// targeting key, or one that is not a non-empty string, or a key
// expression that is neither a string nor null), which makes fractional
// give null.
func (k bucketKey) hash(e env) (h uint32, ok bool, err error) {
	flagKey, tk, ok := e.bucketingIdentity()
	if !ok {
		return 0, false, nil
	}
	var buf [256]byte
	switch {
	case k.cat != nil:
		b, err := k.appendCat(e, buf[:0])
		if err != nil {
			return 0, false, err
		}
		return murmur3.Sum32(b), true, nil
	case k.isExpr:
		v, err := k.expr(e)
		if err != nil || (v.k != KindString && v.k != KindNull) {
			return 0, false, err
		}
		if v.k == KindString {
			if err := e.scan(v, null); err != nil {
				return 0, false, err
			}
			return murmur3.StringSum32(v.Text()), true, nil
		}
	case !k.implicit:
		return murmur3.StringSum32(k.literal), true, nil
	}
	s, isString := tk.(string)
	if !isString || s == "" {
		return 0, false, nil
	}
	if err := e.hashing(s); err != nil {
		return 0, false, err
	}
	return murmur3.Sum32(append(append(buf[:0], flagKey...), s...)), true, nil
}

// appendCat appends the cat key as the cat operation would build it,
// charging the evaluation for what it appends; without a budget the key
// may still be no longer than an evaluation could build.
func (k bucketKey) appendCat(e env, b []byte) ([]byte, error) {
	for _, p := range k.cat {
		v, err := p.eval(e)
		if err != nil {
			return nil, err
		}
		if v.k == KindNumber {
			b = strconv.AppendFloat(b, v.n, 'f', -1, 64)
			continue
		}
		s, err := v.str()
		if err != nil {
			return nil, fmt.Errorf("cat: %w", err)
		}
		if len(b)+len(s) > MaxEvalBytes {
			return nil, exceeded(&fullBudget, false)
		}
		if err := e.hashing(s); err != nil {
			return nil, err
		}
		b = append(b, s...)
	}
	if len(k.cat) > 1 {
		b = bytes.TrimSpace(b)
	}
	return b, nil
}

// bucketingIdentity returns the flag key and targeting key fractional
// buckets on: the evaluation's, or inside an array operation the
// element's, as flagd reads them from whatever data it is given.
func (e env) bucketingIdentity() (flagKey string, targetingKey any, ok bool) {
	if !e.scoped {
		return e.key(), e.ctx["targetingKey"], true
	}
	m, isMap := e.elem.(map[string]any)
	if !isMap {
		return "", nil, false
	}
	if p, isMap := m[flagdPrefix].(map[string]any); isMap {
		flagKey, _ = p["flagKey"].(string)
	}
	return flagKey, m["targetingKey"], true
}
