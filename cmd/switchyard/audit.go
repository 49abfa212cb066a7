package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/switchyard-dev/switchyard/client"
	"github.com/switchyard-dev/switchyard/store/postgres"
)

// The bounds of reading the audit log page by page.
const (
	// auditPageLimit is the most entries the server answers in a page.
	auditPageLimit = 1000
	// maxAuditScan bounds how many entries a filtered list or a tail reads
	// in one go, however few of them match.
	maxAuditScan = 10_000
)

// auditFilter selects audit entries.
type auditFilter struct {
	actor, action, outcome string
	since                  time.Time
}

func (f *auditFilter) bind(fs *flag.FlagSet) {
	fs.StringVar(&f.actor, "actor", "", "only entries of this actor, e.g. admin:1a2b3c")
	fs.StringVar(&f.action, "action", "", "only entries of this action: set_flag, set_profile, set_override, clear_override, set_system_mode, import_flags, ...")
	fs.Func("outcome", "only applied or rejected entries", func(s string) error {
		if s != "applied" && s != "rejected" {
			return fmt.Errorf("%q: use applied or rejected", s)
		}
		f.outcome = s
		return nil
	})
}

func (f auditFilter) match(e client.AuditEntry) bool {
	return (f.actor == "" || e.Actor == f.actor) && (f.action == "" || e.Action == f.action) &&
		(f.outcome == "" || e.Outcome == f.outcome)
}

func (f auditFilter) filtering() bool {
	return f.actor != "" || f.action != "" || f.outcome != "" || !f.since.IsZero()
}

// bindSince defines --since on fs, a duration back from now or a time.
func (f *auditFilter) bindSince(fs *flag.FlagSet) {
	fs.Func("since", "only entries since then: a duration back from now (24h) or a time (2026-03-01T09:00:00Z)", func(s string) error {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			f.since = time.Now().Add(-d)
			return nil
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return fmt.Errorf("%q: use a duration like 24h or a time like 2026-03-01T09:00:00Z", s)
		}
		f.since = t
		return nil
	})
}

// auditScan reads the audit log newest first and returns at most limit
// entries that f matches, and the newest entry's sequence number (0 for an
// empty log). It reads no further back than f's since, or maxAuditScan
// entries, after which cut is set.
func auditScan(ctx context.Context, api *client.Client, f auditFilter, limit int) (entries []client.AuditEntry, newest int64, cut bool, err error) {
	q := client.AuditQuery{Limit: limit}
	if f.filtering() {
		q.Limit = auditPageLimit
	}
	scanned := 0
	for {
		page, err := api.Audit(ctx, q)
		if err != nil {
			return nil, 0, false, err
		}
		for _, e := range page.Entries {
			newest = max(newest, e.Seq)
			if !f.since.IsZero() && e.Time.Before(f.since) {
				return entries, newest, false, nil
			}
			if f.match(e) {
				if entries = append(entries, e); len(entries) == limit {
					return entries, newest, false, nil
				}
			}
		}
		scanned += len(page.Entries)
		switch {
		case page.NextBefore == 0:
			return entries, newest, false, nil
		case scanned >= maxAuditScan:
			return entries, newest, true, nil
		}
		q.Before = page.NextBefore
	}
}

// auditListCommand is "switchyard audit list".
func auditListCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
		f   auditFilter
	)
	f.bind(fs)
	f.bindSince(fs)
	limit := fs.Int("limit", 20, "the most entries to list, 1 to 1000")
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *limit < 1 || *limit > auditPageLimit {
			return usagef("--limit %d: use 1 to %d", *limit, auditPageLimit)
		}
		cl, err := api.client("a viewer or admin")
		if err != nil {
			return err
		}
		entries, _, cut, err := auditScan(ctx, cl, f, *limit)
		if err != nil {
			return err
		}
		if cut {
			fmt.Fprintf(c.stderr, "stopped after reading the newest %d entries; narrow the search with --since\n", maxAuditScan)
		}
		if out.json {
			if entries == nil {
				entries = []client.AuditEntry{}
			}
			return writeJSON(c.stdout, entries)
		}
		c.printAudit(entries, true)
		return nil
	}
}

// printAudit writes entries to stdout as a table, in the order given,
// under its header if header is set.
func (c *cli) printAudit(entries []client.AuditEntry, header bool) {
	p := c.paletteFor(c.stdout)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTARGET\tOUTCOME\tREASON")
	}
	for _, e := range entries {
		outcome, detail := p.green(e.Outcome), e.Reason
		if e.Outcome != "applied" {
			outcome, detail = p.red(e.Outcome), e.Why+" (reason: "+e.Reason+")"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, outcome, detail)
	}
	tw.Flush()
}

// auditTailCommand is "switchyard audit tail": the newest entries, then
// every new one as the server writes it, until interrupted.
func auditTailCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
		f   auditFilter
	)
	f.bind(fs)
	backlog := fs.Int("limit", 10, "how many of the newest entries to print first, 0 to 1000")
	interval := fs.Duration("interval", 2*time.Second, "how often to ask the server for new entries")
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		switch {
		case *backlog < 0 || *backlog > auditPageLimit:
			return usagef("--limit %d: use 0 to %d", *backlog, auditPageLimit)
		case *interval < 10*time.Millisecond:
			return usagef("--interval %v: use at least 10ms", *interval)
		}
		cl, err := api.client("a viewer or admin")
		if err != nil {
			return err
		}
		entries, last, _, err := auditScan(ctx, cl, f, max(*backlog, 1))
		if err != nil {
			return err
		}
		if *backlog == 0 {
			entries = nil
		}
		slices.Reverse(entries)
		if err := c.printTail(entries, out.json, true); err != nil {
			return err
		}
		ticker := time.NewTicker(*interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
			}
			fresh, newest, err := auditSince(ctx, cl, last)
			switch {
			case ctx.Err() != nil:
				return nil
			case exitCode(err) == exitUnavailable:
				fmt.Fprintf(c.stderr, "switchyard: %v; asking again in %v\n", err, *interval)
				continue
			case err != nil:
				return err
			}
			last = max(last, newest)
			if err := c.printTail(slices.DeleteFunc(fresh, func(e client.AuditEntry) bool { return !f.match(e) }), out.json, false); err != nil {
				return err
			}
		}
	}
}

// auditSince returns the entries after sequence number last, oldest first,
// and the newest one's number; at most maxAuditScan of them, the newest.
func auditSince(ctx context.Context, api *client.Client, last int64) ([]client.AuditEntry, int64, error) {
	var fresh []client.AuditEntry
	var newest int64
	q := client.AuditQuery{Limit: auditPageLimit}
	for len(fresh) < maxAuditScan {
		page, err := api.Audit(ctx, q)
		if err != nil {
			return nil, 0, err
		}
		done := page.NextBefore == 0
		for _, e := range page.Entries {
			newest = max(newest, e.Seq)
			if e.Seq <= last {
				done = true
				break
			}
			fresh = append(fresh, e)
		}
		if done {
			break
		}
		q.Before = page.NextBefore
	}
	slices.Reverse(fresh)
	return fresh, newest, nil
}

// printTail writes entries to stdout: a table's rows (under its header
// if header is set), or one JSON object a line.
func (c *cli) printTail(entries []client.AuditEntry, asJSON, header bool) error {
	if !asJSON {
		if header || len(entries) > 0 {
			c.printAudit(entries, header)
		}
		return nil
	}
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("write JSON: %w", err)
		}
		fmt.Fprintf(c.stdout, "%s\n", line)
	}
	return nil
}

// auditVerifyCommand is "switchyard audit verify": walk the hash chain, on
// the server or, with a database URL, in the database itself; a broken
// chain is an error.
func auditVerifyCommand(fs *flag.FlagSet, c *cli) runner {
	var (
		api apiFlags
		out outputFlag
	)
	var db databaseFlag
	db.bind(fs, c.getenv, "verify in the Postgres database at `URL` instead of asking the server")
	api.bind(fs, c.getenv)
	out.bind(fs)
	return func(ctx context.Context, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		var (
			v     *client.Verification
			where string
			err   error
		)
		if url := db.value(); url != "" {
			v, err = verifyInDatabase(ctx, url, c.stderr)
			where = "in the database"
		} else {
			v, err = verifyOnServer(ctx, &api)
			where = "by " + api.server
		}
		if err != nil {
			return err
		}
		if out.json {
			if err := writeJSON(c.stdout, v); err != nil {
				return err
			}
		} else if v.OK {
			fmt.Fprintf(c.stdout, "%s: %d entries, the newest %d (hash %s), verified %s\n",
				c.paletteFor(c.stdout).green("audit chain intact"), v.Entries, v.HeadSeq, v.HeadHash, where)
		}
		if !v.OK {
			return fmt.Errorf("audit chain broken at entry %d: %s", v.FirstBad, v.Problem)
		}
		return nil
	}
}

func verifyOnServer(ctx context.Context, api *apiFlags) (*client.Verification, error) {
	cl, err := api.client("a viewer or admin")
	if err != nil {
		return nil, err
	}
	return cl.VerifyAudit(ctx)
}

func verifyInDatabase(ctx context.Context, url string, logs io.Writer) (*client.Verification, error) {
	st, err := postgres.Open(ctx, url, postgres.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	v, err := st.VerifyAudit(ctx)
	if err != nil {
		return nil, err
	}
	return &client.Verification{OK: v.OK, Entries: v.Entries, FirstBad: v.FirstBad, Problem: v.Problem, HeadSeq: v.HeadSeq, HeadHash: v.HeadHash}, nil
}
