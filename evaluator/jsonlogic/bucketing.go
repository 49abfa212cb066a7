package jsonlogic

import (
	"crypto/sha1"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/twmb/murmur3"
)

// Bucketing operations of the vendors Switchyard imports flags from, so a
// percentage rollout migrated from LaunchDarkly or Unleash keeps assigning
// every user to the same side.

// ldBucketScale is LaunchDarkly's divisor: the largest 15-hex-digit number.
const ldBucketScale = float64(0xFFFFFFFFFFFFFFF)

// compileLDBucket compiles
//
//	{"ld_bucket": [<key>, "<flagKey>", "<salt>", <seed or null>]}
//
// LaunchDarkly's bucket of the key, in [0, 100000): the first 15 hex
// digits of SHA-1("<flagKey>.<salt>.<key>") (or "<seed>.<key>" when seeded)
// over 0xFFFFFFFFFFFFFFF, times 100000. A string key is used as it is, a
// whole number as its decimal form; any other key, or none, is bucket 0.
func compileLDBucket(c *compiler, args any, path string, depth int) (expr, error) {
	a, ok := args.([]any)
	if !ok || len(a) != 4 {
		return expr{}, errorAt(path, "takes [key, flagKey, salt, seed or null]")
	}
	flagKey, ok := a[1].(string)
	if !ok {
		return expr{}, errorAt(path+"[1]", "the flag key is a string, not %s", jsonType(a[1]))
	}
	salt, ok := a[2].(string)
	if !ok {
		return expr{}, errorAt(path+"[2]", "the salt is a string, not %s", jsonType(a[2]))
	}
	prefix := flagKey + "." + salt + "."
	switch seed := a[3].(type) {
	case nil:
	case float64:
		if !isIntegral(seed) || math.Abs(seed) > math.MaxInt32 {
			return expr{}, errorAt(path+"[3]", "the seed is a whole number, not %v", seed)
		}
		prefix = strconv.Itoa(int(seed)) + "."
	default:
		return expr{}, errorAt(path+"[3]", "the seed is a number or null, not %s", jsonType(a[3]))
	}
	key, err := c.compile(a[0], path+"[0]", depth+1)
	if err != nil {
		return expr{}, err
	}
	return c.fold(expr{eval: func(e env) (Value, error) {
		k, err := key.eval(e)
		if err != nil {
			return null, err
		}
		if err := e.hashing(k.Text()); err != nil {
			return null, err
		}
		var buf [256]byte
		b, ok := appendBucketingValue(append(buf[:0], prefix...), k)
		if !ok {
			return numberValue(0), nil
		}
		sum := sha1.Sum(b)
		h := binary.BigEndian.Uint64(sum[:8]) >> 4
		return numberValue(float64(h) / ldBucketScale * 100000), nil
	}}, key), nil
}

// compileUnleashHash compiles
//
//	{"unleash_hash": [<value>, "<groupId>", <normalizer>, <seed>]}
//
// Unleash's normalized hash, murmur3_x86_32("<groupId>:<value>", seed) %
// normalizer + 1: an integer in [1, normalizer]. Unleash uses seed 0 for
// rollout percentages and 86028157 for variant assignment. A string value
// is used as it is, a whole number as its decimal form; an empty or
// missing value, or any other, gives null.
func compileUnleashHash(c *compiler, args any, path string, depth int) (expr, error) {
	a, ok := args.([]any)
	if !ok || len(a) != 4 {
		return expr{}, errorAt(path, "takes [value, groupId, normalizer, seed]")
	}
	group, ok := a[1].(string)
	if !ok {
		return expr{}, errorAt(path+"[1]", "the group id is a string, not %s", jsonType(a[1]))
	}
	normalizer, ok := a[2].(float64)
	if !ok || !isIntegral(normalizer) || normalizer < 1 || normalizer > math.MaxUint32 {
		return expr{}, errorAt(path+"[2]", "the normalizer is a whole number from 1 to %d", uint32(math.MaxUint32))
	}
	seed, ok := a[3].(float64)
	if !ok || !isIntegral(seed) || seed < 0 || seed > math.MaxUint32 {
		return expr{}, errorAt(path+"[3]", "the seed is a whole number from 0 to %d", uint32(math.MaxUint32))
	}
	prefix, n, s := group+":", uint32(normalizer), uint32(seed)
	v, err := c.compile(a[0], path+"[0]", depth+1)
	if err != nil {
		return expr{}, err
	}
	return c.fold(expr{eval: func(e env) (Value, error) {
		x, err := v.eval(e)
		if err != nil {
			return null, err
		}
		if x.k == KindString && x.Text() == "" {
			return null, nil
		}
		if err := e.hashing(x.Text()); err != nil {
			return null, err
		}
		var buf [256]byte
		b, ok := appendBucketingValue(append(buf[:0], prefix...), x)
		if !ok {
			return null, nil
		}
		return numberValue(float64(murmur3.SeedSum32(s, b)%n + 1)), nil
	}}, v), nil
}

// appendBucketingValue appends a bucketing attribute as the vendors'
// SDKs stringify it: strings as they are, whole numbers in decimal.
func appendBucketingValue(b []byte, v Value) ([]byte, bool) {
	switch {
	case v.k == KindString:
		return append(b, v.Text()...), true
	case v.k == KindNumber && isIntegral(v.n):
		return strconv.AppendInt(b, int64(v.n), 10), true
	}
	return b, false
}
