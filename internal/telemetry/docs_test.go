package telemetry

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// rulesFile holds the alert rules the README's Monitoring section points to.
const rulesFile = "../../examples/alerts/switchyard.rules.yml"

var (
	fqName     = regexp.MustCompile(`fqName: "([^"]+)"`)
	metricName = regexp.MustCompile(`switchyard_[a-z_]+`)
)

// ownMetrics returns the names of Switchyard's own metrics.
func ownMetrics(m *Metrics) []string {
	ch := make(chan *prometheus.Desc, 100)
	for _, c := range m.own {
		c.Describe(ch)
	}
	close(ch)
	var names []string
	for d := range ch {
		names = append(names, fqName.FindStringSubmatch(d.String())[1])
	}
	return names
}

// mentioned returns the metric names text mentions, without the suffixes
// of a histogram's series.
func mentioned(text string) []string {
	var out []string
	for _, n := range metricName.FindAllString(text, -1) {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && strings.HasSuffix(base, "_seconds") {
				n = base
			}
		}
		out = append(out, n)
	}
	return out
}

// TestMonitoringDocs: the README's Monitoring section lists every metric
// Switchyard exports and names none that it does not; the alert rules
// use only metrics that exist, and promtool accepts them where it is
// installed (Debian's prometheus package ships it).
func TestMonitoringDocs(t *testing.T) {
	own := ownMetrics(New(Options{}))
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Monitoring\n")
	if !ok {
		t.Fatal(`README.md has no "## Monitoring" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := mentioned(section)
	for _, name := range own {
		if !slices.Contains(documented, name) {
			t.Errorf("README's Monitoring section does not list %s", name)
		}
	}
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(documented, mentioned(string(rules))...) {
		if !slices.Contains(own, name) {
			t.Errorf("%s is documented but not exported", name)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus): the rules' syntax is not checked")
	}
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
