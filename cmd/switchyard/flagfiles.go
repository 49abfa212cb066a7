package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/internal/control"
)

// flagFilesInterval is how often serve --flags looks at its files. A stat
// a second is nothing, sees an atomic replace and an in-place write
// alike, and needs no file-notification library.
const flagFilesInterval = time.Second

// flagFilesActor is who the audit log says made the changes the flag
// files make.
const flagFilesActor = "flag-files"

// flagFiles serves the flag files of serve --flags in demo mode, as flagd
// serves its -f files: their flags (merged in order, a later file's flag
// winning) are the general flags, and each change to a file is a revision
// like any other, admitted and audited. A flag that fails validation is
// served as PARSE_ERROR and logged with its reason; a file that does not
// parse at all keeps what it held before. While production is served the
// files wait; back in demo mode (whose store starts afresh) they are
// served again.
type flagFiles struct {
	logger *slog.Logger
	core   *control.Core
	files  []*flagFile
	// served is the digest of the document last applied; zero when the
	// demo store may not hold it (before the first, after a mode switch).
	served [sha256.Size]byte
	// away is set while another mode is served: back in demo mode, the
	// files are served again.
	away bool
}

// flagFile is one file and what it held when last read.
type flagFile struct {
	path string
	info os.FileInfo
	// doc is the last document the file parsed to.
	doc switchyard.Document
}

// flagFilePath reads a --flags value as flagd does: a path, or a file:
// URI (file:flags.json, file:///etc/flags.json).
func flagFilePath(arg string) string {
	if p, ok := strings.CutPrefix(arg, "file://"); ok {
		return p
	}
	return strings.TrimPrefix(arg, "file:")
}

// loadFlagFiles reads every file and serves them. A file that cannot be
// read or is not a flag file stops the start: the operator named it.
func loadFlagFiles(ctx context.Context, logger *slog.Logger, core *control.Core, args []string) (*flagFiles, error) {
	ff := &flagFiles{logger: logger, core: core}
	for _, a := range args {
		f := &flagFile{path: flagFilePath(a)}
		if err := f.read(); err != nil {
			return nil, err
		}
		ff.files = append(ff.files, f)
	}
	if err := ff.serve(ctx); err != nil {
		return nil, fmt.Errorf("serve the flag files: %w", err)
	}
	return ff, nil
}

// run looks at the files every interval until ctx ends.
func (ff *flagFiles) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			ff.poll(ctx)
		}
	}
}

// poll reads the files that changed since they were last read and serves
// the result when it differs from what is served. A change refused (an
// admin freeze) is tried again when a file changes again, or is touched.
func (ff *flagFiles) poll(ctx context.Context) {
	if ff.core.Mode() != switchyard.ModeDemo {
		ff.served, ff.away = [sha256.Size]byte{}, true
		return
	}
	changed := ff.away
	ff.away = false
	for _, f := range ff.files {
		if f.changed() {
			changed = true
			if err := f.read(); err != nil {
				ff.logger.Error("a flag file changed and does not load; serving what it held before", "file", f.path, "err", err)
			}
		}
	}
	if !changed {
		return
	}
	if err := ff.serve(ctx); err != nil {
		ff.logger.Error("serve the flag files; change or touch a file to try again", "err", err)
	}
}

// serve applies the files' merged document unless it is what is served.
func (ff *flagFiles) serve(ctx context.Context) error {
	doc := switchyard.Document{Flags: map[string]switchyard.Flag{}}
	for _, f := range ff.files {
		maps.Copy(doc.Flags, f.doc.Flags)
		if len(f.doc.Evaluators) > 0 {
			doc.Evaluators = merge(doc.Evaluators, f.doc.Evaluators)
		}
		if len(f.doc.Metadata) > 0 {
			doc.Metadata = merge(doc.Metadata, f.doc.Metadata)
		}
	}
	encoded, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(encoded)
	if digest == ff.served {
		return nil
	}
	var invalid []string
	for _, key := range slices.Sorted(maps.Keys(doc.Flags)) {
		if why := doc.Flags[key].Invalid; why != "" {
			invalid = append(invalid, key)
			ff.logger.Warn("a flag file's flag is invalid: it answers PARSE_ERROR, the other flags are served", "flag", key, "reason", why)
		}
	}
	paths := make([]string, len(ff.files))
	for i, f := range ff.files {
		paths[i] = f.path
	}
	applied, err := ff.core.Apply(ctx, control.Change{
		Actor: flagFilesActor, Role: switchyard.RoleAdmin, RequestID: rand.Text(), Mode: switchyard.ModeDemo,
		Action: "serve_flag_files", Target: "flags", Phrase: control.FlagFilesPhrase,
		Reason: "serve --flags: the flag files " + strings.Join(paths, ", "),
		Plan:   func() (control.Plan, error) { return control.FlagFilesPlan(doc), nil },
	})
	if err != nil {
		return err
	}
	ff.served = digest
	ff.logger.Info("serving the flag files", "files", paths, "flags", len(doc.Flags), "invalid", invalid, "revision", applied.Status.Revision)
	return nil
}

// merge returns a new map of a's entries and b's, b's winning.
func merge[V any](a, b map[string]V) map[string]V {
	m := maps.Clone(a)
	if m == nil {
		m = make(map[string]V, len(b))
	}
	maps.Copy(m, b)
	return m
}

// changed reports whether the file is not the one last read: another file
// moved in its place (an atomic replace), written since (in place), gone
// or back.
func (f *flagFile) changed() bool {
	info, err := os.Stat(f.path)
	if err != nil {
		return f.info != nil
	}
	return f.info == nil || !os.SameFile(info, f.info) || !info.ModTime().Equal(f.info.ModTime()) || info.Size() != f.info.Size()
}

// read reads and parses the file; on failure the file keeps the document
// it held before.
func (f *flagFile) read() error {
	fh, err := os.Open(f.path)
	if err != nil {
		f.info = nil
		return fmt.Errorf("flag file: %w", err)
	}
	defer fh.Close()
	info, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("flag file %s: %w", f.path, err)
	}
	f.info = info
	data, err := io.ReadAll(io.LimitReader(fh, evaluator.MaxDocumentSize+1))
	if err != nil {
		return fmt.Errorf("flag file %s: %w", f.path, err)
	}
	doc, err := parseFlagFile(f.path, data)
	if err != nil {
		return fmt.Errorf("flag file %s: %w", f.path, err)
	}
	f.doc = doc
	return nil
}

// parseFlagFile parses a flagd file, JSON or (by its extension, as flagd
// tells them apart) YAML.
func parseFlagFile(path string, data []byte) (switchyard.Document, error) {
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".yaml" || ext == ".yml" {
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			return switchyard.Document{}, fmt.Errorf("malformed YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		var err error
		if data, err = json.Marshal(v); err != nil {
			return switchyard.Document{}, fmt.Errorf("YAML that is not JSON: %w", err)
		}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return switchyard.Document{}, errors.New("the file is empty")
	}
	return evaluator.ParseFlagFile(data)
}
