package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/importer"
)

// The defaults of the commands that talk to a running server.
const (
	defaultServer = "http://127.0.0.1:8080"
	// httpTimeout bounds every request to the server. An import uploads up
	// to importer.MaxSize and the server converts and stores it as one
	// revision, which takes seconds at most.
	httpTimeout = time.Minute
	// importPhrase is the phrase the server expects on an import. The CLI
	// supplies it: running the command with --reason is the confirmation.
	importPhrase = "IMPORT FLAGS"
)

// serverFlags are the flags of a command that calls the HTTP API.
type serverFlags struct {
	server, token string
}

func (s *serverFlags) bind(fs *flag.FlagSet, getenv func(string) string) {
	server := getenv("SWITCHYARD_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&s.server, "server", server, "base URL of the Switchyard server [SWITCHYARD_SERVER]")
	fs.StringVar(&s.token, "token", getenv("SWITCHYARD_TOKEN"), "API token; admin to import, viewer or admin to export [SWITCHYARD_TOKEN]")
}

// parseInterleaved parses args with fs, allowing flags after positional
// arguments (switchyard import FILE --dry-run), and returns the positional
// ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// importCmd runs "switchyard import": convert a vendor's flag file and
// store its flags on the server as one audited revision, or with --dry-run
// convert it here and print the report and the flagd JSON. The report goes
// to stderr and the JSON or the result to stdout, so the JSON can be
// redirected to a file.
func importCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchyard import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: switchyard import --from FORMAT [--environment ENV] [--dry-run] [--reason TEXT] [--server URL] [--token TOKEN] FILE")
		fs.PrintDefaults()
	}
	from := fs.String("from", "", "format of FILE: "+strings.Join(importer.Formats, ", "))
	env := fs.String("environment", "", "LaunchDarkly or Unleash environment to import; required when the file holds several")
	dryRun := fs.Bool("dry-run", false, "convert locally and print the report and the flagd JSON; contacts no server")
	reason := fs.String("reason", "", "why the flags are imported, for the audit log; required without --dry-run")
	var srv serverFlags
	srv.bind(fs, getenv)
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(files) != 1:
		fs.Usage()
		return errors.New("import needs exactly one FILE")
	case !slices.Contains(importer.Formats, *from):
		return fmt.Errorf("--from %q: use one of %s", *from, strings.Join(importer.Formats, ", "))
	case !*dryRun && strings.TrimSpace(*reason) == "":
		return errors.New("--reason is required: say why the flags are imported, for the audit log (it confirms the import)")
	case !*dryRun && srv.token == "":
		return errors.New("no token: set --token or SWITCHYARD_TOKEN to an admin token")
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
		printReport(stderr, res.Report)
		return writeJSON(stdout, res.Document)
	}
	body, err := json.Marshal(struct {
		Format      string `json:"format"`
		Content     string `json:"content"`
		Environment string `json:"environment,omitempty"`
		Phrase      string `json:"phrase"`
		Reason      string `json:"reason"`
	}{*from, string(content), *env, importPhrase, *reason})
	if err != nil {
		return fmt.Errorf("encode the import request: %w", err)
	}
	var result struct {
		AuditSeq int64                    `json:"audit_seq"`
		Status   struct{ Revision int64 } `json:"status"`
		Report   []importer.Note          `json:"report"`
		Imported []string                 `json:"imported"`
	}
	if _, err := apiCall(ctx, srv, http.MethodPost, "/v1/admin/import", body, &result); err != nil {
		return fmt.Errorf("import %s: %w", files[0], err)
	}
	printReport(stderr, result.Report)
	fmt.Fprintf(stdout, "imported %d flags from %s as revision %d (audit entry %d): %s\n",
		len(result.Imported), files[0], result.Status.Revision, result.AuditSeq, strings.Join(result.Imported, ", "))
	return nil
}

// exportCmd runs "switchyard export": write the server's current revision,
// runtime flags included, as a flagd document to stdout or --output.
func exportCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("switchyard export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", importer.FormatFlagd, "export format; flagd is the only one")
	output := fs.String("output", "", "file to write; stdout when empty")
	var srv serverFlags
	srv.bind(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	case *format != importer.FormatFlagd:
		return fmt.Errorf("--format %q: flagd is the only export format", *format)
	case srv.token == "":
		return errors.New("no token: set --token or SWITCHYARD_TOKEN to a viewer or admin token")
	}
	var doc json.RawMessage
	revision, err := apiCall(ctx, srv, http.MethodGet, "/v1/admin/export?format="+url.QueryEscape(*format), nil, &doc)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if *output == "" {
		return writeJSON(stdout, doc)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, doc); err != nil {
		return err
	}
	if err := os.WriteFile(*output, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write the export: %w", err)
	}
	fmt.Fprintf(stderr, "exported revision %s to %s\n", revision, *output)
	return nil
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

// writeJSON writes v as indented JSON followed by a newline, with <, >
// and & as they are: the output is a file for people and flagd, not HTML.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// apiCall sends one request to the server's API with the bearer token and a
// deadline, decodes a success into out and returns its ETag without
// quotes. A failure names the server's error code and message.
func apiCall(ctx context.Context, srv serverFlags, method, path string, body []byte, out any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, httpTimeout)
	defer cancel()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(srv.server, "/")+path, reader)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", srv.server, err)
	}
	req.Header.Set("Authorization", "Bearer "+srv.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("no answer from %s: %w", srv.server, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return "", fmt.Errorf("read the answer of %s: %w", srv.server, err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error.Code == "" {
			return "", fmt.Errorf("%s %s answered %s: %.200s", method, path, res.Status, data)
		}
		return "", fmt.Errorf("%s: %s", e.Error.Code, e.Error.Message)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return "", fmt.Errorf("%s %s answered something other than JSON: %w", method, path, err)
	}
	return strings.Trim(res.Header.Get("ETag"), `"`), nil
}
