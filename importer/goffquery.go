package importer

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// queryParser converts GO Feature Flag's query language (the grammar of
// github.com/nikunjy/rules: `email ew "@example.com" and (age gt 30 or beta
// eq true)`) to JsonLogic. Like the original, "and" and "or" have the same
// precedence and group from the left, and "not" applies to a parenthesised
// query.
type queryParser struct {
	src string
	pos int
	// caseInsensitive is set when a converted comparison was
	// case-insensitive in GO Feature Flag and is case-sensitive now.
	caseInsensitive bool
}

type queryTokenKind int

const (
	tokEOF queryTokenKind = iota
	tokWord
	tokString
	tokNumber
	tokVersion
	tokSymbol
)

type queryToken struct {
	kind queryTokenKind
	text string
	pos  int
	num  float64
}

func (p *queryParser) errorf(pos int, format string, args ...any) error {
	return fmt.Errorf("query %q at character %d: %s", p.src, pos+1, fmt.Sprintf(format, args...))
}

func (p *queryParser) next() (queryToken, error) {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\n' || p.src[p.pos] == '\t' || p.src[p.pos] == '\r') {
		p.pos++
	}
	start := p.pos
	if p.pos >= len(p.src) {
		return queryToken{kind: tokEOF, pos: start}, nil
	}
	c := p.src[p.pos]
	switch {
	case c == '"':
		p.pos++
		for p.pos < len(p.src) && p.src[p.pos] != '"' {
			if p.src[p.pos] == '\\' {
				p.pos++
			}
			p.pos++
		}
		if p.pos >= len(p.src) {
			return queryToken{}, p.errorf(start, "unterminated string")
		}
		p.pos++
		var s string
		if err := json.Unmarshal([]byte(p.src[start:p.pos]), &s); err != nil {
			return queryToken{}, p.errorf(start, "malformed string %s", p.src[start:p.pos])
		}
		return queryToken{kind: tokString, text: s, pos: start}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		p.pos++
		dots := 0
		for p.pos < len(p.src) {
			d := p.src[p.pos]
			if d >= '0' && d <= '9' || d == 'e' || d == 'E' || d == '+' || (d == '-' && (p.src[p.pos-1] == 'e' || p.src[p.pos-1] == 'E')) {
				p.pos++
				continue
			}
			if d == '.' && p.pos+1 < len(p.src) && p.src[p.pos+1] >= '0' && p.src[p.pos+1] <= '9' {
				dots++
				p.pos++
				continue
			}
			break
		}
		text := p.src[start:p.pos]
		if dots == 2 && c != '-' {
			return queryToken{kind: tokVersion, text: text, pos: start}, nil
		}
		n, err := strconv.ParseFloat(text, 64)
		if err != nil || dots > 1 {
			return queryToken{}, p.errorf(start, "malformed number %s", text)
		}
		return queryToken{kind: tokNumber, text: text, num: n, pos: start}, nil
	case c < 0x80 && unicode.IsLetter(rune(c)):
		for p.pos < len(p.src) {
			d := p.src[p.pos]
			if d < 0x80 && (unicode.IsLetter(rune(d)) || unicode.IsDigit(rune(d))) || d == '-' || d == '_' || d == ':' ||
				(d == '.' && p.pos+1 < len(p.src) && p.src[p.pos+1] < 0x80 && unicode.IsLetter(rune(p.src[p.pos+1]))) {
				p.pos++
				continue
			}
			break
		}
		return queryToken{kind: tokWord, text: p.src[start:p.pos], pos: start}, nil
	}
	for _, sym := range []string{"==", "!=", "<=", ">=", "<", ">", "(", ")", "[", "]", ","} {
		if strings.HasPrefix(p.src[p.pos:], sym) {
			p.pos += len(sym)
			return queryToken{kind: tokSymbol, text: sym, pos: start}, nil
		}
	}
	return queryToken{}, p.errorf(start, "unexpected character %q", c)
}

func (p *queryParser) peek() (queryToken, error) {
	save := p.pos
	t, err := p.next()
	p.pos = save
	return t, err
}

func (p *queryParser) parse() (any, error) {
	e, err := p.logical(0)
	if err != nil {
		return nil, err
	}
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	if t.kind != tokEOF {
		return nil, p.errorf(t.pos, "unexpected %q", t.text)
	}
	return e, nil
}

// logical parses term (and|or term)*, grouping from the left.
func (p *queryParser) logical(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf(p.pos, "nested deeper than %d levels", maxDepth)
	}
	left, err := p.term(depth)
	if err != nil {
		return nil, err
	}
	nesting := 0
	for {
		t, err := p.peek()
		if err != nil {
			return nil, err
		}
		if t.kind != tokWord || (t.text != "and" && t.text != "or") {
			return left, nil
		}
		_, _ = p.next()
		right, err := p.term(depth)
		if err != nil {
			return nil, err
		}
		if m, ok := left.(map[string]any); ok && len(m) == 1 && m[t.text] != nil {
			// Extend a run of the same operator instead of nesting.
			m[t.text] = append(m[t.text].([]any), right)
			continue
		}
		if nesting++; depth+nesting > maxDepth {
			return nil, p.errorf(t.pos, "alternates \"and\" and \"or\" more than %d times", maxDepth)
		}
		left = op(t.text, left, right)
	}
}

func (p *queryParser) term(depth int) (any, error) {
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	negate := false
	if t.kind == tokWord && (t.text == "not" || t.text == "NOT") {
		negate = true
		if t, err = p.next(); err != nil {
			return nil, err
		}
		if t.kind != tokSymbol || t.text != "(" {
			return nil, p.errorf(t.pos, "\"not\" must be followed by a parenthesised query")
		}
	}
	if t.kind == tokSymbol && t.text == "(" {
		e, err := p.logical(depth + 1)
		if err != nil {
			return nil, err
		}
		closing, err := p.next()
		if err != nil {
			return nil, err
		}
		if closing.kind != tokSymbol || closing.text != ")" {
			return nil, p.errorf(closing.pos, "expected \")\"")
		}
		if negate {
			return not(e), nil
		}
		return e, nil
	}
	if t.kind != tokWord {
		return nil, p.errorf(t.pos, "expected an attribute name, found %q", t.text)
	}
	path := t.text
	if path == "key" {
		path = targetingKey // GO Feature Flag's "key" is the targeting key
	}
	opTok, err := p.next()
	if err != nil {
		return nil, err
	}
	operator := strings.ToLower(opTok.text)
	if opTok.kind == tokSymbol {
		operator = map[string]string{"==": "eq", "!=": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge"}[opTok.text]
	}
	if operator == "pr" {
		return present(path), nil
	}
	if !map[string]bool{"eq": true, "ne": true, "lt": true, "gt": true, "le": true, "ge": true,
		"co": true, "sw": true, "ew": true, "in": true}[operator] || (opTok.kind != tokWord && opTok.kind != tokSymbol) {
		return nil, p.errorf(opTok.pos, "unknown operator %q", opTok.text)
	}
	return p.compare(path, operator, opTok.pos)
}

var querySymbols = map[string]string{"eq": "==", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}

// compare converts `path operator value`. As in GO Feature Flag, the value's
// type decides the comparison, and a missing attribute never matches.
func (p *queryParser) compare(path, operator string, at int) (any, error) {
	v := attr(path)
	t, err := p.next()
	if err != nil {
		return nil, err
	}
	wrong := func(what string) error {
		return p.errorf(at, "operator %q cannot compare with %s", operator, what)
	}
	switch {
	case t.kind == tokSymbol && t.text == "[":
		if operator != "in" {
			return nil, wrong("a list")
		}
		list, err := p.list()
		if err != nil {
			return nil, err
		}
		return op("in", v, list), nil
	case operator == "in":
		return nil, p.errorf(t.pos, "\"in\" needs a list")
	case t.kind == tokString:
		if strings.IndexFunc(t.text, unicode.IsLetter) >= 0 {
			p.caseInsensitive = true
		}
		switch operator {
		case "eq":
			return op("==", v, t.text), nil
		case "co":
			return op("in", t.text, v), nil
		case "sw":
			return op("starts_with", v, t.text), nil
		case "ew":
			return op("ends_with", v, t.text), nil
		}
		return all(present(path), op(querySymbols[operator], v, t.text)), nil
	case t.kind == tokVersion:
		sym, ok := map[string]string{"eq": "=", "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}[operator]
		if !ok {
			return nil, wrong("a version")
		}
		return op("sem_ver", v, sym, t.text), nil
	case t.kind == tokNumber:
		sym, ok := querySymbols[operator]
		if !ok {
			return nil, wrong("a number")
		}
		if operator == "eq" {
			return op("==", v, t.num), nil
		}
		return all(present(path), op(sym, v, t.num)), nil
	case t.kind == tokWord && (t.text == "true" || t.text == "false"):
		b := t.text == "true"
		switch operator {
		case "eq":
			return op("==", v, b), nil
		case "ne":
			return all(present(path), op("!=", v, b)), nil
		}
		return nil, wrong("a boolean")
	case t.kind == tokWord && t.text == "null":
		switch operator {
		case "eq":
			return op("==", v, nil), nil
		case "ne":
			return present(path), nil
		}
		return nil, wrong("null")
	}
	return nil, p.errorf(t.pos, "expected a value, found %q", t.text)
}

// list parses the rest of ["a", "b"] or [1, 2]: one type throughout.
func (p *queryParser) list() ([]any, error) {
	var out []any
	var kind queryTokenKind
	for {
		t, err := p.next()
		if err != nil {
			return nil, err
		}
		if t.kind != tokString && t.kind != tokNumber {
			return nil, p.errorf(t.pos, "a list holds strings or numbers, found %q", t.text)
		}
		if len(out) > 0 && t.kind != kind {
			return nil, p.errorf(t.pos, "a list mixes strings and numbers")
		}
		kind = t.kind
		if t.kind == tokString {
			out = append(out, t.text)
		} else {
			out = append(out, t.num)
		}
		sep, err := p.next()
		if err != nil {
			return nil, err
		}
		if sep.kind == tokSymbol && sep.text == "]" {
			return out, nil
		}
		if sep.kind != tokSymbol || sep.text != "," {
			return nil, p.errorf(sep.pos, "expected \",\" or \"]\"")
		}
	}
}
