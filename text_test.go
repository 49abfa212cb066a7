package switchyard_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard"
)

// The audit log keeps valid text as it is, escapes the rest, and cuts
// what is too long to the limit with a note of the original size, however
// the text was made; keeping it again changes nothing.
func TestAuditText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"valid", "ENABLE EXAM MODE", 200, "ENABLE EXAM MODE"},
		{"exactly the limit", strings.Repeat("é", 200), 200, strings.Repeat("é", 200)},
		{"NUL", "ENABLE\x00EXAM MODE", 200, `"ENABLE\x00EXAM MODE"`},
		{"invalid UTF-8", "caf\xe9", 200, `"caf\xe9"`},
		{"invalid with wide characters", strings.Repeat("é", 30) + "\x00", 40, `"` + strings.Repeat("é", 30) + `\x00"`},
		{"too long", strings.Repeat("a", 1<<20), 40, strings.Repeat("a", 18) + "… [cut: 1048576 bytes]"},
		{"too long in characters", strings.Repeat("é", 41), 40, strings.Repeat("é", 23) + "… [cut: 82 bytes]"},
		{"escaped past the limit", strings.Repeat("\x00", 20), 40, `"` + strings.Repeat(`\x00`, 5) + `\x… [cut: 20 bytes]`},
		{"long and invalid", "\xff" + strings.Repeat("b", 1<<20), 40, `"\xff` + strings.Repeat("b", 13) + "… [cut: 1048577 bytes]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := switchyard.AuditText(tt.in, tt.max)
			if got != tt.want {
				t.Fatalf("AuditText = %q, want %q", got, tt.want)
			}
			if !switchyard.ValidText(got) || utf8.RuneCountInString(got) > tt.max {
				t.Fatalf("AuditText = %q: not valid text of at most %d characters", got, tt.max)
			}
			if again := switchyard.AuditText(got, tt.max); again != got {
				t.Fatalf("AuditText twice = %q, want %q", again, got)
			}
		})
	}
}

func TestCheckText(t *testing.T) {
	if err := switchyard.CheckText("phrase", "SET PROFILE PRIMARY é"); err != nil {
		t.Fatalf("valid text refused: %v", err)
	}
	for _, bad := range []string{"a\x00b", "\xc3", "\xed\xa0\x80"} {
		err := switchyard.CheckText("reason", bad)
		if e := switchyard.AsError(err); err == nil || e.Code != switchyard.CodeInvalidText || e.Fields["field"] != "reason" {
			t.Fatalf("CheckText(%q) = %v, want INVALID_TEXT naming the field reason", bad, err)
		}
	}
}
