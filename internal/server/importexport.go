package server

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard/evaluator"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/store"
)

// importPhrase confirms an import. It names no flag: one import may hold
// hundreds, and the report already says what each becomes.
const importPhrase = "IMPORT FLAGS"

// importBodyBytes bounds the body of POST /v1/admin/import. The file
// travels as a JSON string, which escaping makes longer than the file:
// twice importer.MaxSize covers a file whose every byte is a quote or a
// backslash, and the rest covers the other fields. The importer itself
// refuses content over importer.MaxSize with a message that says so.
const importBodyBytes = 2*importer.MaxSize + 64<<10

// exportFormat is the one format GET /v1/admin/export writes.
const exportFormat = importer.FormatFlagd

// importRequest is the body of POST /v1/admin/import.
type importRequest struct {
	confirmation
	Format      string `json:"format"`
	Content     string `json:"content"`
	Environment string `json:"environment"`
	DryRun      bool   `json:"dry_run"`
}

// importResult answers a real import: the change result every change
// route answers, the importer's report, and the keys of the flags stored.
type importResult struct {
	AuditSeq int64           `json:"audit_seq"`
	Status   status          `json:"status"`
	Report   []importer.Note `json:"report"`
	Imported []string        `json:"imported"`
}

// dryRunResult answers a dry run: what an import would store and report.
type dryRunResult struct {
	DryRun   bool               `json:"dry_run"`
	Report   []importer.Note    `json:"report"`
	Document evaluator.Document `json:"document"`
}

// limitImportBody caps the body of an import at importBodyBytes, or at
// MaxBodyBytes when that is configured larger. It replaces limitBody on
// this one route, whose body carries a whole flag file.
func (s *server) limitImportBody(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max(s.cfg.MaxBodyBytes, importBodyBytes))
	c.Next()
}

// importFlags serves POST /v1/admin/import: convert a flagd, LaunchDarkly,
// Unleash or GO Feature Flag file and store its flags as one audited
// revision. It keeps the rules of every change route (admin role, reason,
// phrase, If-Match, refusals audited) and answers the importer's report
// with the change result.
//
// A dry run converts and validates the same way but stores nothing and is
// not audited, refused or not: the audit log records attempts to change
// the runtime, and a dry run never is one. A request whose body cannot be
// decoded is not known to be a dry run, so its refusal is audited.
func (s *server) importFlags(c *gin.Context) {
	b := s.acquire()
	defer b.leave()
	who := principalOf(c)
	var req importRequest
	decodeErr := decodeStrict(c.Request.Body, &req)
	dryRun := decodeErr == nil && req.DryRun
	attempt := store.Attempt{
		Actor:     who.actor,
		Role:      string(who.role),
		Action:    "import_flags",
		Target:    "flags",
		Reason:    req.Reason,
		Phrase:    req.Phrase,
		RequestID: requestID(c),
	}
	refuse := func(why error) {
		if dryRun {
			s.fail(c, why)
			return
		}
		s.reject(c, b, attempt, why)
	}
	switch {
	case who.role != RoleAdmin:
		refuse(evaluator.Errorf(evaluator.CodeForbidden, "the %s role cannot import flags; use an admin token", who.role))
		return
	case decodeErr != nil:
		refuse(decodeErr)
		return
	case strings.TrimSpace(req.Reason) == "":
		refuse(evaluator.Errorf(evaluator.CodeReasonRequired, "reason is required: say why the flags are imported, for the audit log"))
		return
	case utf8.RuneCountInString(req.Reason) > maxReasonLength:
		refuse(evaluator.Errorf(evaluator.CodeReasonRequired, "reason must be at most %d characters", maxReasonLength).
			With("max_length", maxReasonLength))
		return
	}
	// The file is converted only for an admin with a reason: converting is
	// the expensive step, and the refusals above need none of it.
	res, err := importer.Import(req.Format, []byte(req.Content), importer.Options{Environment: req.Environment})
	switch {
	case err != nil:
		refuse(err)
		return
	case req.Phrase != importPhrase:
		refuse(evaluator.Errorf(evaluator.CodePhraseMismatch, "phrase must be exactly %q", importPhrase).
			With("expected_phrase", importPhrase))
		return
	}
	expected, err := parseIfMatch(c.GetHeader("If-Match"))
	if err != nil {
		refuse(err)
		return
	}
	if dryRun {
		c.JSON(http.StatusOK, dryRunResult{DryRun: true, Report: res.Report, Document: res.Document})
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), writeTimeout)
	defer cancel()
	rev, entry, err := b.store.Apply(ctx, store.Change{
		Attempt: attempt, Expected: expected, Mutation: evaluator.ImportFlags(res.Document),
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := b.flags.install(rev); err != nil {
		s.logger.Error("install the new revision", "revision", rev.Number, "err", err)
	}
	imported := slices.Sorted(maps.Keys(res.Document.Flags))
	s.logger.Info("flags imported", "format", req.Format, "flags", len(imported), "notes", len(res.Report),
		"actor", entry.Actor, "revision", rev.Number, "audit_seq", entry.Seq, "request_id", entry.RequestID)
	c.Header("ETag", revisionETag(rev.Number))
	c.JSON(http.StatusOK, importResult{AuditSeq: entry.Seq, Status: b.statusOf(rev), Report: res.Report, Imported: imported})
}

// exportFlags serves GET /v1/admin/export?format=flagd: the current
// revision, runtime flags included, as a flagd document that flagd itself
// loads. It reads the store, like the status, so an export is never a
// stale cached copy.
func (s *server) exportFlags(c *gin.Context) {
	if format, ok := c.GetQuery("format"); ok && format != exportFormat {
		s.fail(c, evaluator.Errorf(evaluator.CodeInvalidRequest, "format %q cannot be exported; the only export format is %q", format, exportFormat).
			With("field", "format"))
		return
	}
	b := s.acquire()
	defer b.leave()
	ctx, cancel := context.WithTimeout(c.Request.Context(), readTimeout)
	defer cancel()
	rev, err := b.store.Current(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("ETag", revisionETag(rev.Number))
	c.JSON(http.StatusOK, evaluator.Export(rev, b.mode))
}
