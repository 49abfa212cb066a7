package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// TimeLayout is the canonical audit time encoding: UTC, microseconds, so it
// is the same whatever the session's time zone and whether Go or Postgres
// (to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) writes it.
const TimeLayout = "2006-01-02T15:04:05.000000Z"

// Canonical returns the byte string an audit entry's hash covers: every
// field but the hashes, in a fixed order, each as its byte length, a colon,
// the bytes and a semicolon. Length prefixes make the encoding unambiguous,
// and it is simple enough for a database trigger to compute identically.
func Canonical(e AuditEntry) string {
	var b strings.Builder
	for _, f := range []string{
		strconv.FormatInt(e.Seq, 10),
		e.Time.UTC().Format(TimeLayout),
		e.Actor, e.Role, e.Action, e.Target, e.Reason, e.Phrase, e.RequestID,
		e.Outcome, e.Why,
		strconv.FormatInt(e.Revision, 10),
		string(e.Before), string(e.After),
	} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
		b.WriteByte(';')
	}
	return b.String()
}

// ChainHash returns hex(sha256(prevHash || Canonical(e))).
func ChainHash(prevHash string, e AuditEntry) string {
	sum := sha256.Sum256([]byte(prevHash + Canonical(e)))
	return hex.EncodeToString(sum[:])
}

// Chain verifies audit entries fed to it in sequence order. Stores walk
// their log through one Chain, so every store verifies the same way.
type Chain struct {
	v    Verification
	prev string
	seq  int64
}

// Add checks the next entry. It returns false once the chain is broken;
// later entries are then not checked.
func (c *Chain) Add(e AuditEntry) bool {
	if c.v.FirstBad != 0 {
		return false
	}
	c.v.Entries++
	switch {
	case e.Seq != c.seq+1:
		c.fail(e.Seq, fmt.Sprintf("sequence jumps from %d to %d: an entry is missing", c.seq, e.Seq))
	case e.PrevHash != c.prev:
		c.fail(e.Seq, "prev_hash does not match the previous entry's hash")
	case ChainHash(e.PrevHash, e) != e.Hash:
		c.fail(e.Seq, "hash does not match the entry's content")
	}
	c.prev, c.seq = e.Hash, e.Seq
	c.v.HeadSeq, c.v.HeadHash = e.Seq, e.Hash
	return c.v.FirstBad == 0
}

func (c *Chain) fail(seq int64, problem string) {
	c.v.FirstBad, c.v.Problem = seq, fmt.Sprintf("entry %d: %s", seq, problem)
}

// Result returns the verification so far.
func (c *Chain) Result() Verification {
	v := c.v
	v.OK = v.FirstBad == 0
	return v
}

// NewAuditEntry builds the entry for an attempt, without sequence number and
// hashes, which the store assigns when it appends. why is nil for an applied
// change; before and after are the changed part of the state, or nil.
// Every text field is kept as switchyard.AuditText makes it: valid, and cut
// to its limit. The core refuses a change whose text is invalid or too long,
// so only the record of a refusal is ever cut or escaped, and it is cut and
// escaped alike whichever store keeps it.
func NewAuditEntry(a Attempt, now time.Time, revision int64, why error, before, after any) (AuditEntry, error) {
	e := AuditEntry{
		Time:      now.UTC().Truncate(time.Microsecond),
		Actor:     switchyard.AuditText(a.Actor, switchyard.MaxNameLength),
		Role:      switchyard.AuditText(a.Role, switchyard.MaxNameLength),
		Action:    switchyard.AuditText(a.Action, switchyard.MaxNameLength),
		Target:    switchyard.AuditText(a.Target, switchyard.MaxTargetLength),
		Reason:    switchyard.AuditText(a.Reason, switchyard.MaxReasonLength),
		Phrase:    switchyard.AuditText(a.Phrase, switchyard.MaxPhraseLength),
		RequestID: switchyard.AuditText(a.RequestID, switchyard.MaxNameLength),
		Outcome:   OutcomeApplied,
		Revision:  revision,
	}
	if why != nil {
		e.Outcome = OutcomeRejected
		e.Why = switchyard.AuditText(rejection(why), switchyard.MaxWhyLength)
	}
	var err error
	if e.Before, err = rawJSON(before); err != nil {
		return AuditEntry{}, fmt.Errorf("encode audit before: %w", err)
	}
	if e.After, err = rawJSON(after); err != nil {
		return AuditEntry{}, fmt.Errorf("encode audit after: %w", err)
	}
	return e, nil
}

func rawJSON(v any) (json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// rejection renders a refusal as "CODE: message" for the audit log.
func rejection(err error) string {
	var e *switchyard.Error
	if errors.As(err, &e) {
		return string(e.Code) + ": " + e.Message
	}
	return err.Error()
}

// ClampLimit bounds an audit page size to 1..1000, 50 when unset.
func ClampLimit(limit int) int {
	switch {
	case limit <= 0:
		return 50
	case limit > 1000:
		return 1000
	}
	return limit
}

// AuditPageBytes bounds an audit page in bytes when its query sets no
// MaxBytes. Rows are bounded too (NewAuditEntry), but a log may hold rows
// written before they were, and an import's row holds the flags it
// replaced and stored: a page of a thousand such rows must not take a
// gigabyte to read or send.
const AuditPageBytes = 1 << 20

// Size is what e weighs in a page: the bytes of its text, before and after.
func (e AuditEntry) Size() int {
	return len(e.Actor) + len(e.Role) + len(e.Action) + len(e.Target) + len(e.Reason) + len(e.Phrase) +
		len(e.RequestID) + len(e.Outcome) + len(e.Why) + len(e.Before) + len(e.After) + len(e.PrevHash) + len(e.Hash)
}

// AuditPage collects one page of an audit query, newest entry first, as a
// store reads them. Every store fills its pages through one, so pages end
// alike: at the query's Limit (clamped), or before the entry that would
// take them past its MaxBytes (AuditPageBytes when 0). A page always takes
// its first entry, whatever it weighs, so paging never stalls.
type AuditPage struct {
	Entries []AuditEntry
	limit   int
	bytes   int
	used    int
}

// NewAuditPage returns an empty page of q.
func NewAuditPage(q AuditQuery) *AuditPage {
	bytes := q.MaxBytes
	if bytes <= 0 {
		bytes = AuditPageBytes
	}
	return &AuditPage{Entries: []AuditEntry{}, limit: ClampLimit(q.Limit), bytes: bytes}
}

// Limit is how many entries the page takes at most: a store reads no more.
func (p *AuditPage) Limit() int { return p.limit }

// MaxBytes is what the page's entries may weigh together, but for its
// first entry.
func (p *AuditPage) MaxBytes() int { return p.bytes }

// Add adds e to the page unless the page is full, and reports whether it
// did; once it did not, the store stops reading.
func (p *AuditPage) Add(e AuditEntry) bool {
	n := len(p.Entries)
	if n == p.limit || (n > 0 && p.used+e.Size() > p.bytes) {
		return false
	}
	p.Entries = append(p.Entries, e)
	p.used += e.Size()
	return true
}
