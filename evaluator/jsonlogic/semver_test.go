package jsonlogic

import (
	"fmt"
	"testing"
)

func TestParseVersion(t *testing.T) {
	valid := map[string]version{
		"1.2.3":          {major: "1", minor: "2", patch: "3"},
		"v1.2.3":         {major: "1", minor: "2", patch: "3"},
		"V1.2.3":         {major: "1", minor: "2", patch: "3"},
		"1":              {major: "1", minor: "0", patch: "0"},
		"v1.2":           {major: "1", minor: "2", patch: "0"},
		"0.0.0":          {major: "0", minor: "0", patch: "0"},
		"10.20.30":       {major: "10", minor: "20", patch: "30"},
		"1.0.0-alpha.1":  {major: "1", minor: "0", patch: "0", prerelease: "-alpha.1"},
		"1.0.0+build.5":  {major: "1", minor: "0", patch: "0"},
		"1.0.0-rc.1+b-2": {major: "1", minor: "0", patch: "0", prerelease: "-rc.1"},
		"1.0.0-0a.x-y":   {major: "1", minor: "0", patch: "0", prerelease: "-0a.x-y"},
	}
	for s, want := range valid {
		var got version
		if ok := parseVersion(s, &got); !ok || got != want {
			t.Errorf("parseVersion(%q) = %+v, %v; want %+v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "v", "V", "vv1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2.3.4", "1.2-beta",
		"1-beta", "1.2.3-", "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.3+a..b", "1.2.3-a_b", " 1.2.3", "1.2.3 ",
		"1.2.", "1..2", "x.y.z", "1.2.3-+b"} {
		var v version
		if parseVersion(s, &v) {
			t.Errorf("parseVersion(%q) = %+v, want invalid", s, v)
		}
	}
}

// TestVersionPrecedence checks the precedence example of semver.org and
// that build metadata and shorthand forms do not change it.
func TestVersionPrecedence(t *testing.T) {
	order := []string{"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "1.10.0", "2.0.0", "10.0.0"}
	for i, a := range order {
		for j, b := range order {
			var va, vb version
			parseVersion(a, &va)
			parseVersion(b, &vb)
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := compareVersions(&va, &vb); got != want {
				t.Errorf("compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	for a, b := range map[string]string{"1.0.0+a": "1.0.0+b", "1": "1.0.0", "v1.2": "1.2.0", "V2": "2.0.0"} {
		var va, vb version
		if !parseVersion(a, &va) || !parseVersion(b, &vb) {
			t.Fatalf("%s or %s does not parse", a, b)
		}
		if c := compareVersions(&va, &vb); c != 0 {
			t.Errorf("compare(%s, %s) = %d, want 0", a, b, c)
		}
	}
}

func TestSemVerOperation(t *testing.T) {
	tests := []struct {
		version any
		op      string
		target  string
		want    any
	}{
		{"1.2.3", "=", "1.2.3", true},
		{"1.2.3", "!=", "1.2.3", false},
		{"1.2.3", "<", "1.10.0", true},
		{"1.2.3", "<=", "1.2.3", true},
		{"2.0.0-rc.1", ">", "2.0.0", false},
		{"2.0.0", ">=", "2.0.0-rc.1", true},
		{"1.9.9", "^", "1.0.0", true},
		{"2.0.0", "^", "1.0.0", false},
		{"1.2.9", "~", "1.2.0", true},
		{"1.3.0", "~", "1.2.0", false},
		{"v1.2.3", "=", "1.2.3", true},
		{1.2, ">", "1.1", true},
		{2.0, "=", "2.0.0", true},
		{"not-a-version", "=", "1.0.0", nil},
		{"1.0.0", "===", "1.0.0", nil},
		{"1.0.0", "=", "banana", nil},
		{true, "=", "1.0.0", nil},
		{nil, "=", "1.0.0", nil},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v %s %s", tt.version, tt.op, tt.target)
		t.Run(name, func(t *testing.T) {
			rule := fmt.Sprintf(`{"sem_ver": [{"var": "v"}, %q, %q]}`, tt.op, tt.target)
			ctx := map[string]any{"v": tt.version}
			// Constant and computed operators and targets take different paths.
			dynamic := `{"sem_ver": [{"var": "v"}, {"var": "op"}, {"var": "target"}]}`
			dctx := map[string]any{"v": tt.version, "op": tt.op, "target": tt.target}
			for rule, ctx := range map[string]map[string]any{rule: ctx, dynamic: dctx} {
				r, err := compileRule("f", []byte(rule), nil)
				if err != nil {
					t.Fatal(err)
				}
				v, err := r.evalAt(ctx, 0)
				if err != nil || v.toAny() != tt.want {
					t.Errorf("%s: got %v, %v; want %v", rule, v.toAny(), err, tt.want)
				}
			}
		})
	}
}

// sem_ver gives null, not an error, for a wrong number of arguments.
func TestSemVerArity(t *testing.T) {
	for _, rule := range []string{`{"sem_ver": []}`, `{"sem_ver": ["1.0.0", "="]}`, `{"sem_ver": ["1", "=", "1", "1"]}`} {
		got, err := evalRule(t, rule, `{}`, nil)
		if err != nil || got != nil {
			t.Errorf("%s: got %v, %v; want null", rule, got, err)
		}
	}
}
