package switchyard

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The most characters the audit log keeps of each text field of an
// attempt to change the runtime. Every real value is far shorter (the
// longest phrase names a module and a version of at most 63 characters
// each), so the core refuses a change with a longer field, and the refusal
// is recorded with the field cut (AuditText): whatever a caller sends, one
// attempt costs the append-only log a row of bounded size.
const (
	// MaxPhraseLength bounds the confirmation phrase.
	MaxPhraseLength = 200
	// MaxReasonLength bounds the reason every change must give.
	MaxReasonLength = 1000
	// MaxTargetLength bounds what a change names as its target: a flag,
	// "module:<key>", "profile:<name>".
	MaxTargetLength = 200
	// MaxNameLength bounds the actor, role, action and request ID, which
	// the server and the token configuration choose, not the request body.
	MaxNameLength = 128
	// MaxWhyLength bounds why an attempt was refused, which may quote the
	// request.
	MaxWhyLength = 2000
)

// ValidText reports whether s is text every store keeps as it is: valid
// UTF-8 without NUL characters. Postgres refuses both, and neither has a
// meaning in a phrase, a reason or a name.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// CheckText returns an INVALID_TEXT error naming field when s is not
// ValidText, so every mode refuses such text alike before a store sees it.
func CheckText(field, s string) error {
	if ValidText(s) {
		return nil
	}
	return Errorf(CodeInvalidText, "%s must be valid UTF-8 text without NUL characters", field).With("field", field)
}

// AuditText returns s as the audit log keeps it: s itself when it is valid
// text of at most max characters. Text that is not valid is escaped as
// strconv.Quote escapes it (quotes included, so the escaping shows); text
// longer than max characters is cut and ends with a note of its size in
// bytes, the result having at most max characters. It is idempotent, and
// beyond checking validity it works on at most max characters of s
// however long s is.
func AuditText(s string, max int) string {
	t, whole := s, true
	if !ValidText(s) {
		// Each character quoted stands for one to utf8.UTFMax bytes of
		// s, so this much of s is all that max characters can show.
		kept := s[:min(len(s), max*utf8.UTFMax)]
		t, whole = strconv.Quote(kept), len(kept) == len(s)
	}
	if whole && runeOffset(t, max) == len(t) {
		return t
	}
	note := fmt.Sprintf("… [cut: %d bytes]", len(s))
	return t[:runeOffset(t, max-utf8.RuneCountInString(note))] + note
}

// runeOffset returns the byte offset of the character after the first n
// of s, or len(s) when s has no more than n.
func runeOffset(s string, n int) int {
	for i := range s {
		if n <= 0 {
			return i
		}
		n--
	}
	return len(s)
}
