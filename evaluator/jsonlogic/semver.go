package jsonlogic

import (
	"strconv"
	"strings"
)

// flagd's sem_ver operation:
//
//	{"sem_ver": [<version>, "<op>", <version>]}
//
// with op one of = != < <= > >= (precedence of semantic versions, build
// metadata ignored), ^ (same major) and ~ (same major and minor). Versions
// follow flagd's leniency: a leading "v" or "V" is optional, and "1" or
// "1.2" stand for "1.0.0" and "1.2.0"; numbers are read as their decimal
// form. Anything else (a wrong argument count, an invalid version, an
// unknown operator) gives null, so the default variant is served.

// version is a parsed semantic version; its parts are substrings of the
// input.
type version struct {
	major, minor, patch string
	prerelease          string
}

// semverOp is a sem_ver operator.
type semverOp uint8

const (
	semverEqual semverOp = iota
	semverNotEqual
	semverLess
	semverLessOrEqual
	semverGreater
	semverGreaterOrEqual
	semverSameMajor
	semverSameMinor
)

var semverOps = map[string]semverOp{
	"=": semverEqual, "!=": semverNotEqual, "<": semverLess, "<=": semverLessOrEqual,
	">": semverGreater, ">=": semverGreaterOrEqual, "^": semverSameMajor, "~": semverSameMinor,
}

// semverOpOf returns the operator v names; ok is false for anything sem_ver
// does not know.
func semverOpOf(v Value) (op semverOp, ok bool) {
	if v.k != KindString {
		return 0, false
	}
	op, ok = semverOps[v.Text()]
	return op, ok
}

// test applies the operator to a and b.
func (op semverOp) test(a, b *version) bool {
	switch op {
	case semverEqual:
		return compareVersions(a, b) == 0
	case semverNotEqual:
		return compareVersions(a, b) != 0
	case semverLess:
		return compareVersions(a, b) < 0
	case semverLessOrEqual:
		return compareVersions(a, b) <= 0
	case semverGreater:
		return compareVersions(a, b) > 0
	case semverGreaterOrEqual:
		return compareVersions(a, b) >= 0
	case semverSameMajor:
		return compareNumeric(a.major, b.major) == 0
	}
	return compareNumeric(a.major, b.major) == 0 && compareNumeric(a.minor, b.minor) == 0
}

func compileSemVer(c *compiler, args any, path string, depth int) (expr, error) {
	a, err := c.args(args, path, depth, 0, -1)
	if err != nil {
		return expr{}, err
	}
	if len(a) != 3 {
		return c.fold(expr{eval: func(e env) (Value, error) {
			for _, x := range a {
				if _, err := x.eval(e); err != nil {
					return null, err
				}
			}
			return null, nil
		}}, a...), nil
	}
	if a[1].konst && a[2].konst {
		// The usual form, {"sem_ver": [{"var": ...}, ">=", "2.0.0"]}: the
		// operator and the target are read once, here.
		actual := a[0].eval
		op, okOp := semverOpOf(a[1].val)
		var want version
		okTarget := parseVersionValue(a[2].val, &want)
		return c.fold(expr{eval: func(e env) (Value, error) {
			v, err := actual(e)
			if err != nil {
				return null, err
			}
			if err := e.scan(v, null); err != nil {
				return null, err
			}
			var have version
			if !parseVersionValue(v, &have) || !okOp || !okTarget {
				return null, nil
			}
			return boolValue(op.test(&have, &want)), nil
		}}, a[0]), nil
	}
	f := funcs(a)
	return c.fold(expr{eval: func(e env) (Value, error) {
		var v [3]Value
		if err := evalInto(e, f, v[:]); err != nil {
			return null, err
		}
		if err := e.scan(v[0], v[2]); err != nil {
			return null, err
		}
		var have, want version
		op, ok := semverOpOf(v[1])
		if !parseVersionValue(v[0], &have) || !ok || !parseVersionValue(v[2], &want) {
			return null, nil
		}
		return boolValue(op.test(&have, &want)), nil
	}}, a...), nil
}

// parseVersionValue reads a version from a rule value as flagd does: a
// string as it is, anything else in Go's %v form (numbers in their
// shortest form, which can only be valid for numbers).
func parseVersionValue(v Value, out *version) bool {
	switch v.k {
	case KindString:
		return parseVersion(v.Text(), out)
	case KindNumber:
		return parseVersion(strconv.FormatFloat(v.n, 'g', -1, 64), out)
	}
	return false
}

// parseVersion parses s into v, with an optional leading "v" or "V", by the rules
// of golang.org/x/mod/semver (the package flagd uses): MAJOR[.MINOR[.PATCH
// [-PRERELEASE][+BUILD]]] with no leading zeros; the shorthand forms take
// no prerelease or build.
func parseVersion(s string, v *version) bool {
	if s != "" && (s[0] == 'v' || s[0] == 'V') {
		s = s[1:]
	}
	*v = version{}
	var ok bool
	if v.major, s, ok = parseNumber(s); !ok {
		return false
	}
	if s == "" {
		v.minor, v.patch = "0", "0"
		return true
	}
	if s[0] != '.' {
		return false
	}
	if v.minor, s, ok = parseNumber(s[1:]); !ok {
		return false
	}
	if s == "" {
		v.patch = "0"
		return true
	}
	if s[0] != '.' {
		return false
	}
	if v.patch, s, ok = parseNumber(s[1:]); !ok {
		return false
	}
	if s != "" && s[0] == '-' {
		i := strings.IndexByte(s, '+')
		if i < 0 {
			i = len(s)
		}
		if !validIdentifiers(s[1:i], true) {
			return false
		}
		v.prerelease, s = s[:i], s[i:]
	}
	if s != "" && s[0] == '+' {
		if !validIdentifiers(s[1:], false) {
			return false
		}
		s = ""
	}
	return s == ""
}

// parseNumber splits a numeric identifier without leading zeros off s.
func parseNumber(s string) (num, rest string, ok bool) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i == 0 || (s[0] == '0' && i > 1) {
		return "", "", false
	}
	return s[:i], s[i:], true
}

// validIdentifiers checks dot-separated identifiers of [0-9A-Za-z-], none
// empty; numeric prerelease identifiers must not have leading zeros.
func validIdentifiers(s string, prerelease bool) bool {
	for {
		id, rest, more := strings.Cut(s, ".")
		if id == "" {
			return false
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
				return false
			}
		}
		if prerelease && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

func isNumeric(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// compareNumeric compares two numeric identifiers without leading zeros.
func compareNumeric(a, b string) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// compareVersions orders versions by semantic version precedence.
func compareVersions(a, b *version) int {
	if c := compareNumeric(a.major, b.major); c != 0 {
		return c
	}
	if c := compareNumeric(a.minor, b.minor); c != 0 {
		return c
	}
	if c := compareNumeric(a.patch, b.patch); c != 0 {
		return c
	}
	return comparePrerelease(a.prerelease, b.prerelease)
}

// comparePrerelease orders prereleases ("-alpha.1"): none ranks above
// any; identifiers compare numerically when both are numbers, numbers
// below words, words by ASCII; a longer list wins a tie.
func comparePrerelease(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "":
		return 1
	case b == "":
		return -1
	}
	a, b = a[1:], b[1:]
	for {
		x, ra, moreA := strings.Cut(a, ".")
		y, rb, moreB := strings.Cut(b, ".")
		if x != y {
			nx, ny := isNumeric(x), isNumeric(y)
			switch {
			case nx && ny:
				return compareNumeric(x, y)
			case nx:
				return -1
			case ny:
				return 1
			}
			return strings.Compare(x, y)
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}
