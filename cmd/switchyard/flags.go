package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/importer"
)

// importCommand is "switchyard import": convert a vendor's flag file and
// store its flags on the server as one audited revision, or with --dry-run
// convert it here and print the report and the flagd JSON. The report goes
// to stderr and the JSON or the result to stdout, so the JSON can be
// redirected to a file. The command supplies the phrase (IMPORT FLAGS):
// running it with --reason is the confirmation.
func importCommand(fs *flag.FlagSet, c *cli) runner {
	from := fs.String("from", "", "format of FILE: "+strings.Join(importer.Formats, ", "))
	env := fs.String("environment", "", "LaunchDarkly or Unleash environment to import; required when the file holds several")
	dryRun := fs.Bool("dry-run", false, "convert locally and print the report and the flagd JSON; contacts no server")
	reason := fs.String("reason", "", "why the flags are imported, for the audit log; required without --dry-run")
	var api apiFlags
	api.bind(fs, c.getenv)
	return func(ctx context.Context, files []string) error {
		switch {
		case len(files) != 1:
			return usagef("import needs exactly one FILE")
		case !slices.Contains(importer.Formats, *from):
			return usagef("--from %q: use one of %s", *from, strings.Join(importer.Formats, ", "))
		case !*dryRun && strings.TrimSpace(*reason) == "":
			return usagef("--reason is required: say why the flags are imported, for the audit log (it confirms the import)")
		}
		content, err := readFlagFile(files[0])
		if err != nil {
			return err
		}
		if *dryRun {
			res, err := importer.Import(*from, content, importer.Options{Environment: *env})
			if err != nil {
				return fmt.Errorf("%s: %w", files[0], err)
			}
			printReport(c.stderr, res.Report)
			return writeJSON(c.stdout, res.Document)
		}
		cl, err := api.client("an admin")
		if err != nil {
			return err
		}
		res, err := cl.Import(ctx, client.ImportRequest{Format: *from, Content: string(content), Environment: *env},
			client.Write{Phrase: switchyard.ImportPhrase, Reason: *reason})
		if err != nil {
			return fmt.Errorf("import %s: %w", files[0], err)
		}
		notes := make([]importer.Note, len(res.Report))
		for i, n := range res.Report {
			notes[i] = importer.Note{Flag: n.Flag, Path: n.Path, Severity: importer.Severity(n.Severity), Message: n.Message}
		}
		printReport(c.stderr, notes)
		fmt.Fprintf(c.stdout, "imported %d flags from %s as revision %d (audit entry %d): %s\n",
			len(res.Imported), files[0], res.Status.Revision, res.AuditSeq, strings.Join(res.Imported, ", "))
		return nil
	}
}

// exportCommand is "switchyard export": write the server's current
// revision, runtime flags included, as a flagd document to stdout or
// --output.
func exportCommand(fs *flag.FlagSet, c *cli) runner {
	format := fs.String("format", importer.FormatFlagd, "export format; flagd is the only one")
	output := fs.String("output", "", "file to write; stdout when empty")
	var api apiFlags
	api.bind(fs, c.getenv)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *format != importer.FormatFlagd {
			return usagef("--format %q: flagd is the only export format", *format)
		}
		cl, err := api.client("a viewer or admin")
		if err != nil {
			return err
		}
		doc, revision, err := cl.Export(ctx)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if *output == "" {
			return writeJSON(c.stdout, doc)
		}
		var buf bytes.Buffer
		if err := writeJSON(&buf, doc); err != nil {
			return err
		}
		if err := os.WriteFile(*output, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write the export: %w", err)
		}
		fmt.Fprintf(c.stderr, "exported revision %d to %s\n", revision, *output)
		return nil
	}
}

// readFlagFile reads a flag file, refusing one over importer.MaxSize
// without reading it all.
func readFlagFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the flag file: %w", err)
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, importer.MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the flag file: %w", err)
	}
	if len(content) > importer.MaxSize {
		return nil, fmt.Errorf("%s is larger than the import limit of %d bytes", path, importer.MaxSize)
	}
	return content, nil
}

// printReport writes an import report for a person: one line per note.
func printReport(w io.Writer, notes []importer.Note) {
	if len(notes) == 0 {
		fmt.Fprintln(w, "report: every flag was converted exactly")
		return
	}
	fmt.Fprintf(w, "report: %d notes on what was not converted exactly\n", len(notes))
	for _, n := range notes {
		where := n.Flag
		if n.Path != "" {
			where += " at " + n.Path
		}
		fmt.Fprintf(w, "  %s: %s: %s\n", where, n.Severity, n.Message)
	}
}
