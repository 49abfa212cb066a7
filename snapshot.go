package switchyard

import (
	"time"
	"unicode/utf8"
)

// Source says which layer decided a module's resolved state.
type Source string

// The sources, from weakest to strongest.
const (
	SourceFallback Source = "fallback"
	SourceProfile  Source = "profile"
	SourceOverride Source = "override"
)

// ResolvedModule is the effective state of one module.
type ResolvedModule struct {
	Version string `json:"version"`
	Enabled bool   `json:"enabled"`
	Source  Source `json:"source"`
}

// Runtime is the effective runtime of a revision: what applications are served.
type Runtime struct {
	Revision int64                     `json:"revision"`
	Profile  string                    `json:"profile"`
	System   SystemFlags               `json:"system"`
	Modules  map[string]ResolvedModule `json:"modules"`
}

// Snapshot is a session's pin: the revision and resolved runtime at the
// moment the session was created. It never changes afterwards.
type Snapshot struct {
	SessionID string `json:"session_id"`
	UserID    string `json:"user_id,omitempty"`
	Revision  int64  `json:"revision"`
	// RevisionID is the ID of the pinned revision (Revision.ID): the
	// number alone may name another revision in another history. Empty in
	// snapshots kept by older versions, which name their revision by
	// number alone.
	RevisionID           string                    `json:"revision_id,omitempty"`
	Profile              string                    `json:"profile"`
	Modules              map[string]ResolvedModule `json:"modules"`
	ExamModeAtStart      bool                      `json:"exam_mode_at_start"`
	FreezeUpdatesAtStart bool                      `json:"freeze_updates_at_start"`
	CreatedAt            time.Time                 `json:"created_at"`
	ExpiresAt            time.Time                 `json:"expires_at"`
}

// ValidateSessionID rejects session IDs that are empty, too long, not
// valid UTF-8 or contain control characters, so they are safe as keys in
// every store.
func ValidateSessionID(id string) error {
	if id == "" || len(id) > 128 {
		return Errorf(CodeInvalidRequest, "session_id must be 1 to 128 characters")
	}
	if !utf8.ValidString(id) {
		return Errorf(CodeInvalidRequest, "session_id must be valid UTF-8")
	}
	for _, c := range id {
		if c < 0x21 || c == 0x7f {
			return Errorf(CodeInvalidRequest, "session_id must not contain spaces or control characters")
		}
	}
	return nil
}
