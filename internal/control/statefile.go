package control

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
)

// StateFilePath is the last-known-good file of mode inside Config.StateDir,
// last-known-good.production.json or last-known-good.demo.json: one file a
// mode, so a replica switched to demo and back keeps production's file.
// switchyard serve looks for production's before starting through an
// outage.
func StateFilePath(dir, mode string) string {
	return filepath.Join(dir, "last-known-good."+mode+".json")
}

// stateFile is the last-known-good file's content: the revision a replica
// last installed, so that a replica restarted while every store is down
// serves it instead of the conservative fallback.
type stateFile struct {
	Revision  *switchyard.Revision `json:"revision,omitempty"`
	Mode      string               `json:"mode"`
	WrittenAt time.Time            `json:"written_at"`
}

// writeStateFile writes rev to dir atomically. It is readable by its owner
// only: it holds the whole runtime configuration.
func writeStateFile(dir string, rev *switchyard.Revision, mode string, now time.Time) error {
	// The revision is encoded by itself and spliced in: encoding/json
	// would scan a Marshaler's bytes again, and with thousands of flags
	// they are megabytes, most of them encoded already (Revision.MarshalJSON).
	r, err := rev.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode revision %d: %w", rev.Number, err)
	}
	head, err := json.Marshal(stateFile{Mode: mode, WrittenAt: now.UTC()})
	if err != nil {
		return fmt.Errorf("encode revision %d: %w", rev.Number, err)
	}
	b := make([]byte, 0, len(head)+len(`,"revision":`)+len(r))
	b = append(append(append(b, head[:len(head)-1]...), `,"revision":`...), r...)
	return writeFileAtomic(StateFilePath(dir, mode), append(b, '}'))
}

// writeFileAtomic replaces path with b: a temporary file in the same
// directory, readable by its owner only, synced, then renamed over the old
// one, so a crash leaves the old file or the new one, never half of one.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("create a temporary file in %s: %w", dir, err)
	}
	// Removing after a successful rename fails harmlessly: the name is gone.
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("restrict %s: %w", tmp.Name(), err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	return nil
}

// ReadStateFile reads and validates the last-known-good revision of mode in
// dir. A file written in another mode is refused, even under this mode's
// name: a demo revision must never reach a production replica, nor the
// reverse.
func ReadStateFile(dir, mode string) (*switchyard.Revision, error) {
	path := StateFilePath(dir, mode)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the state file: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	switch {
	case sf.Revision == nil:
		return nil, fmt.Errorf("%s has no revision", path)
	case sf.Mode != mode:
		return nil, fmt.Errorf("%s was written in %q mode, not %q", path, sf.Mode, mode)
	case sf.Revision.Number < 1:
		return nil, fmt.Errorf("%s holds revision %d; revisions start at 1", path, sf.Revision.Number)
	}
	if err := evaluator.Validate(sf.Revision); err != nil {
		return nil, fmt.Errorf("validate revision %d of %s: %w", sf.Revision.Number, path, err)
	}
	return sf.Revision, nil
}
