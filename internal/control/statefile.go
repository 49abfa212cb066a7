package control

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/store"
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
// serves it instead of the conservative fallback, and the store it was
// read from, so that it is never served for another.
type stateFile struct {
	Store     store.Identity       `json:"store"`
	Revision  *switchyard.Revision `json:"revision,omitempty"`
	Mode      string               `json:"mode"`
	WrittenAt time.Time            `json:"written_at"`
}

// identityOf is the identity of st, or the zero Identity when st cannot
// say (the in-memory fixtures).
func identityOf(st store.Store) store.Identity {
	if id, ok := st.(store.Identifier); ok {
		return id.Identity()
	}
	return store.Identity{}
}

// writeStateFile writes rev, read from the store id, to dir atomically. It
// is readable by its owner only: it holds the whole runtime configuration.
func writeStateFile(dir string, rev *switchyard.Revision, mode string, id store.Identity, now time.Time) error {
	// The revision is encoded by itself and spliced in: encoding/json
	// would scan a Marshaler's bytes again, and with thousands of flags
	// they are megabytes, most of them encoded already (Revision.MarshalJSON).
	r, err := rev.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode revision %d: %w", rev.Number, err)
	}
	head, err := json.Marshal(stateFile{Store: id, Mode: mode, WrittenAt: now.UTC()})
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
// dir, for the store id. A file written in another mode is refused, even
// under this mode's name: a demo revision must never reach a production
// replica, nor the reverse. So is a file written from another store (see
// sameStore): a replica pointed at another database must not serve the
// previous one's revision.
func ReadStateFile(dir, mode string, id store.Identity) (*switchyard.Revision, error) {
	path := StateFilePath(dir, mode)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the state file: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if err := sameStore(sf.Store, id); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
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

// stateFileStore returns the store the state file of mode in dir was
// written from, without decoding its revision; false when there is no
// file to read.
func stateFileStore(dir, mode string) (store.Identity, bool) {
	b, err := os.ReadFile(StateFilePath(dir, mode))
	if err != nil {
		return store.Identity{}, false
	}
	var sf struct {
		Store store.Identity `json:"store"`
	}
	if json.Unmarshal(b, &sf) != nil {
		return store.Identity{}, false
	}
	return sf.Store, true
}

// sameStore says why a state file written from the store file must not
// stand in for the store cur, or nil when it may. Once both know their
// installation, it decides: the database itself says what it is, at
// whatever address it is reached (a standby promoted in a failover keeps
// its system identifier; a database recreated at the same address does
// not). Until then, as when a replica starts while its database does not
// answer, the configured addresses must be the same, so a replica pointed
// at another database never serves the previous one's revision. A file
// that names no store (written before files did) serves only a store that
// names none either.
func sameStore(file, cur store.Identity) error {
	if file.Installation != "" && cur.Installation != "" {
		if file.Installation != cur.Installation {
			return fmt.Errorf("written from another database (%s), not this one (%s)", file.Installation, cur.Installation)
		}
		return nil
	}
	switch {
	case file.Address == cur.Address:
		return nil
	case file.Address == "":
		return fmt.Errorf("it does not say which database it was written from, so it cannot stand in for the one configured (%q)", cur.Address)
	}
	return fmt.Errorf("written from the database at %q, not the one configured (%q)", file.Address, cur.Address)
}
