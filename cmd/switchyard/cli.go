package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mattn/go-isatty"

	"github.com/switchyard-dev/switchyard/client"
)

// defaultServer is the server the commands call when neither --server nor
// SWITCHYARD_SERVER says another: the address switchyard serve listens on
// by default.
const defaultServer = "http://127.0.0.1:8080"

// maxTokenFileBytes bounds a token file read: a token is a line.
const maxTokenFileBytes = 4 << 10

// apiFlags are the flags of a command that calls the server's API.
type apiFlags struct {
	server, token, tokenFile string
	getenv                   func(string) string
}

func (a *apiFlags) bind(fs *flag.FlagSet, getenv func(string) string) {
	a.getenv = getenv
	server := getenv("SWITCHYARD_SERVER")
	if server == "" {
		server = defaultServer
	}
	fs.StringVar(&a.server, "server", server, "`URL` of a Switchyard server, any replica [SWITCHYARD_SERVER]")
	// The token's default is not the environment's: help would print it.
	fs.StringVar(&a.token, "token", "", "API `token`: a viewer's to read, an admin's to change [SWITCHYARD_TOKEN]")
	fs.StringVar(&a.tokenFile, "token-file", "", "`file` holding the API token on its first line [SWITCHYARD_TOKEN_FILE]")
}

// client returns a client of the server with the token of the command line
// or, failing it, of the environment. A command that needs a token says
// whose (role, e.g. "an admin"), and is refused without one before it
// calls the server.
func (a *apiFlags) client(role string) (*client.Client, error) {
	token, err := a.resolveToken()
	if err != nil {
		return nil, err
	}
	if token == "" && role != "" {
		return nil, usagef("no token: set --token, --token-file, SWITCHYARD_TOKEN or SWITCHYARD_TOKEN_FILE to %s token", role)
	}
	c, err := client.New(a.server, client.WithToken(token))
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// resolveToken reads the token: --token, else --token-file, else
// SWITCHYARD_TOKEN, else SWITCHYARD_TOKEN_FILE; empty when none is set.
func (a *apiFlags) resolveToken() (string, error) {
	switch {
	case a.token != "" && a.tokenFile != "":
		return "", usagef("--token and --token-file both given: use one")
	case a.token != "":
		return a.token, nil
	case a.tokenFile != "":
		return readTokenFile(a.tokenFile)
	case a.getenv("SWITCHYARD_TOKEN") != "":
		return a.getenv("SWITCHYARD_TOKEN"), nil
	case a.getenv("SWITCHYARD_TOKEN_FILE") != "":
		return readTokenFile(a.getenv("SWITCHYARD_TOKEN_FILE"))
	}
	return "", nil
}

// readTokenFile reads a token from the first line of a file; a file that
// cannot be read is a usage error, like a missing token.
func readTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", usagef("read the token file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes))
	if err != nil {
		return "", usagef("read the token file %s: %w", path, err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	token := strings.TrimSpace(line)
	if token == "" {
		return "", usagef("the token file %s holds no token on its first line", path)
	}
	return token, nil
}

// outputFlag is --output: text for people, json for scripts.
type outputFlag struct{ json bool }

func (o *outputFlag) bind(fs *flag.FlagSet) {
	fs.Func("output", "`format` of the output: text (default) or json, for scripts", func(s string) error {
		switch s {
		case "text", "json":
			o.json = s == "json"
			return nil
		}
		return fmt.Errorf("%q: use text or json", s)
	})
}

// writeJSON writes v as indented JSON followed by a newline, with <, >
// and & as they are: the output is for people and scripts, not HTML.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// palette colours text for a terminal; off, it leaves text as it is.
// Every colour adds the same number of bytes, so columns aligned by
// text/tabwriter stay aligned as long as each cell of a column is painted,
// with plain for those that keep the default colour.
type palette struct{ on bool }

// paletteFor returns the palette of text written to w: colours only on a
// terminal, and never when NO_COLOR is set (no-color.org) or TERM is dumb.
func (c *cli) paletteFor(w io.Writer) palette {
	return palette{on: isTerminal(w) && c.getenv("NO_COLOR") == "" && c.getenv("TERM") != "dumb"}
}

// isTerminal reports whether f, a reader or writer, is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && isatty.IsTerminal(file.Fd())
}

func (p palette) paint(code, s string) string {
	if !p.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (p palette) plain(s string) string  { return p.paint("39", s) }
func (p palette) bold(s string) string   { return p.paint("01", s) }
func (p palette) red(s string) string    { return p.paint("31", s) }
func (p palette) green(s string) string  { return p.paint("32", s) }
func (p palette) yellow(s string) string { return p.paint("33", s) }

// maxLineBytes bounds a line read from stdin: a phrase is at most 200
// characters, and a longer line is sent cut, for the server to refuse.
const maxLineBytes = 4 << 10

// readLine reads one line from r, without its line ending; io.EOF when r
// ends before anything was typed. It reads a byte at a time, so that the
// commands of a script sharing one stdin each read their own line. It
// gives up when ctx is done (Ctrl-C at the prompt).
func readLine(ctx context.Context, r io.Reader) (string, error) {
	type line struct {
		text string
		err  error
	}
	done := make(chan line, 1)
	go func() {
		var text []byte
		b := make([]byte, 1)
		for len(text) < maxLineBytes {
			n, err := r.Read(b)
			switch {
			case n == 1 && b[0] == '\n':
				done <- line{text: strings.TrimSuffix(string(text), "\r")}
				return
			case n == 1:
				text = append(text, b[0])
			case errors.Is(err, io.EOF) && len(text) > 0:
				done <- line{text: string(text)}
				return
			case err != nil:
				done <- line{err: err}
				return
			}
		}
		done <- line{text: string(text)}
	}()
	select {
	case l := <-done:
		return l.text, l.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// confirm returns the phrase that confirms a change: given, from --phrase,
// or typed by the operator at the prompt, which says what the phrase
// does (verb: apply, propose, approve). The prompt reads a line of stdin,
// so a script may pipe it too. What was typed is sent as it is: the server
// compares it with the phrase and records a wrong one in the audit log.
func (c *cli) confirm(ctx context.Context, verb, phrase, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	p := c.paletteFor(c.stderr)
	fmt.Fprintf(c.stderr, "To %s it, type: %s\n> ", verb, p.bold(phrase))
	typed, err := readLine(ctx, c.stdin)
	if !isTerminal(c.stdin) {
		// A terminal echoed the line typed, newline included.
		fmt.Fprintln(c.stderr)
	}
	switch {
	case errors.Is(err, io.EOF):
		return "", usagef("no phrase typed, nothing was sent (scripts give --phrase %q)", phrase)
	case err != nil:
		return "", fmt.Errorf("read the phrase: %w", err)
	case typed == "":
		return "", usagef("no phrase typed, nothing was sent")
	}
	return typed, nil
}
