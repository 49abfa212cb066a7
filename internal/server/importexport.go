package server

import (
	"maps"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/importer"
	"github.com/switchyard-dev/switchyard/internal/control"
)

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
	// SkipInvalid imports a flagd file's valid flags and reports the
	// others, instead of refusing the file.
	SkipInvalid bool `json:"skip_invalid"`
}

// importResult answers a real import: the change result every change
// route answers, the importer's report, and the keys of the flags stored.
type importResult struct {
	AuditSeq int64           `json:"audit_seq"`
	Status   control.Status  `json:"status"`
	Report   []importer.Note `json:"report"`
	Imported []string        `json:"imported"`
}

// dryRunResult answers a dry run: what an import would store and report.
type dryRunResult struct {
	DryRun   bool                `json:"dry_run"`
	Report   []importer.Note     `json:"report"`
	Document switchyard.Document `json:"document"`
}

// limitImportBody caps the body of an import at importBodyBytes, or at
// the configured body limit when that is larger. It replaces limitBody on
// this one route, whose body carries a whole flag file.
func (s *server) limitImportBody(c *gin.Context) {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, max(s.maxBodyBytes, importBodyBytes))
	c.Next()
}

// importFlags serves POST /v1/admin/import: convert a flagd, LaunchDarkly,
// Unleash or GO Feature Flag file and store its flags as one audited
// revision. It keeps the rules of every change route (admin role, reason,
// phrase, If-Match, refusals audited) and answers the importer's report
// with the change result.
//
// A dry run converts and validates the same way but stores nothing and is
// not audited, refused or not. A request whose body cannot be decoded is
// not known to be a dry run, so its refusal is audited.
func (s *server) importFlags(c *gin.Context) {
	var req importRequest
	ch := s.decodeChange(c, "import_flags", "flags", &req, nil)
	ch.DryRun = ch.Invalid == nil && req.DryRun
	var res importer.Result
	ch.Plan = func() (control.Plan, error) {
		p, r, err := control.ImportPlan(req.Format, req.Content, importer.Options{Environment: req.Environment, SkipInvalid: req.SkipInvalid})
		res = r
		return p, err
	}
	applied, err := s.core.Apply(c.Request.Context(), ch)
	switch {
	case err != nil:
		s.fail(c, err)
	case ch.DryRun:
		c.JSON(http.StatusOK, dryRunResult{DryRun: true, Report: res.Report, Document: res.Document})
	default:
		c.Header("ETag", revisionETag(applied.Status.Revision))
		c.JSON(http.StatusOK, importResult{AuditSeq: applied.AuditSeq, Status: applied.Status, Report: res.Report,
			Imported: slices.Sorted(maps.Keys(res.Document.Flags))})
	}
}

// exportFlags serves GET /v1/admin/export?format=flagd: the current
// revision, runtime flags included, as a flagd document that flagd itself
// loads.
func (s *server) exportFlags(c *gin.Context) {
	if format, ok := c.GetQuery("format"); ok && format != exportFormat {
		s.fail(c, switchyard.Errorf(switchyard.CodeInvalidRequest, "format %q cannot be exported; the only export format is %q", format, exportFormat).
			With("field", "format"))
		return
	}
	doc, revision, err := s.core.Export(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("ETag", revisionETag(revision))
	c.JSON(http.StatusOK, doc)
}
