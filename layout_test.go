package switchyard_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// module is this module's path, the prefix of its own imports.
const module = "github.com/switchyard-dev/switchyard"

// rule is one row of the README's layout table: the packages it covers and
// what they may import.
type rule struct {
	packages []string
	// allowed lists the packages of this module they may import.
	allowed []string
	// stdOnly forbids any import outside the standard library; anyModule
	// allows any package of this module.
	stdOnly, anyModule bool
}

var backticked = regexp.MustCompile("`([^`]+)`")

// layoutRules reads the table under "## Layout" in README.md.
func layoutRules(t *testing.T) map[string]rule {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Layout")
	if !ok {
		t.Fatal(`README.md has no "## Layout" section`)
	}
	rules := map[string]rule{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 5 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "package" {
			continue
		}
		var r rule
		for _, m := range backticked.FindAllStringSubmatch(cells[1], -1) {
			r.packages = append(r.packages, m[1])
		}
		imports := strings.TrimSpace(cells[3])
		switch imports {
		case "standard library only":
			r.stdOnly = true
		case "any package of this module":
			r.anyModule = true
		case "no package of this module":
		default:
			for _, m := range backticked.FindAllStringSubmatch(imports, -1) {
				r.allowed = append(r.allowed, m[1])
			}
		}
		for _, p := range r.packages {
			rules[p] = r
		}
	}
	if len(rules) == 0 {
		t.Fatal("the layout table in README.md has no rows")
	}
	return rules
}

// packageImports returns, for every directory of the module holding Go
// code, the imports of its non-test files, keyed by the package's path in
// the module ("switchyard" for the root).
func packageImports(t *testing.T) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			pkg = "switchyard"
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return err
			}
			found[pkg] = append(found[pkg], p)
		}
		if _, ok := found[pkg]; !ok {
			found[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestLayout holds the code to the layout README.md describes: every
// package has a row, and imports only what its row allows, so packages
// import downward only.
func TestLayout(t *testing.T) {
	rules := layoutRules(t)
	for pkg, imports := range packageImports(t) {
		r, ok := rules[pkg]
		if !ok {
			t.Errorf("package %s has no row in README.md's layout table", pkg)
			continue
		}
		for _, imp := range imports {
			own := imp == module || strings.HasPrefix(imp, module+"/")
			name := "switchyard"
			if imp != module {
				name = strings.TrimPrefix(imp, module+"/")
			}
			switch {
			case r.stdOnly && strings.Contains(strings.Split(imp, "/")[0], "."):
				t.Errorf("%s imports %s; its row allows the standard library only", pkg, imp)
			case own && !r.anyModule && name != pkg && !slices.Contains(r.allowed, name):
				t.Errorf("%s imports %s; its row in README.md's layout table allows %v", pkg, name, r.allowed)
			}
		}
	}
}
