package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/switchyard-dev/switchyard/store"
	"github.com/switchyard-dev/switchyard/store/memory"
)

// auditPageOf reads one audit page over HTTP.
func (h *harness) auditPage(t *testing.T, query string) auditPage {
	t.Helper()
	res := h.do(t, call{method: "GET", path: "/v1/admin/audit" + query, token: viewerToken})
	if res.status != http.StatusOK {
		t.Fatalf("GET audit%s = %d %s", query, res.status, res.body)
	}
	var page auditPage
	if err := json.Unmarshal(res.body, &page); err != nil {
		t.Fatal(err)
	}
	return page
}

func TestAuditPaging(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		on := i%2 == 0
		phrase := "DISABLE EXAM MODE"
		if on {
			phrase = "ENABLE EXAM MODE"
		}
		h.admin(t, "POST", "/v1/admin/system/exam-mode", map[string]any{"enabled": on, "phrase": phrase, "reason": "drill " + strconv.Itoa(i)})
	}
	// A rejected attempt is listed like any other.
	h.do(t, call{method: "POST", path: "/v1/admin/system/exam-mode", token: adminToken, body: `{"enabled":true,"phrase":"nope","reason":"drill 5"}`})

	var seqs []int64
	query := "?limit=4"
	pages := 0
	for {
		page := h.auditPage(t, query)
		pages++
		for _, e := range page.Entries {
			seqs = append(seqs, e.Seq)
		}
		if page.NextBefore == 0 {
			break
		}
		query = "?limit=4&before=" + strconv.FormatInt(page.NextBefore, 10)
	}
	if pages != 2 || len(seqs) != 6 {
		t.Fatalf("%d pages with seqs %v, want 2 pages of 6 entries", pages, seqs)
	}
	for i, s := range seqs {
		if s != int64(6-i) {
			t.Fatalf("seqs = %v, want 6 down to 1", seqs)
		}
	}

	newest := h.auditPage(t, "").Entries[0]
	if newest.Outcome != store.OutcomeRejected || newest.Reason != "drill 5" || newest.Why == "" {
		t.Fatalf("newest entry = %+v, want the rejected attempt", newest)
	}
	applied := h.auditPage(t, "?before=6&limit=1").Entries[0]
	if applied.Outcome != store.OutcomeApplied || string(applied.Before) != `{"EXAM_MODE":false}` || string(applied.After) != `{"EXAM_MODE":true}` {
		t.Fatalf("entry 5 = %+v, want exam mode turned on", applied)
	}
	if page := h.auditPage(t, "?limit=6"); page.NextBefore != 0 || len(page.Entries) != 6 {
		t.Fatalf("a page holding everything = %d entries, next_before %d", len(page.Entries), page.NextBefore)
	}
}

func TestAuditQueryRefused(t *testing.T) {
	h := newHarness(t)
	for _, q := range []string{"?limit=abc", "?limit=0", "?before=-3", "?before=1.5"} {
		res := h.do(t, call{method: "GET", path: "/v1/admin/audit" + q, token: viewerToken, breaksSpec: true})
		if res.status != http.StatusBadRequest || res.errorCode(t) != "INVALID_REQUEST" {
			t.Fatalf("GET audit%s = %d %s, want 400 INVALID_REQUEST", q, res.status, res.body)
		}
	}
}

func TestAuditVerify(t *testing.T) {
	h := newHarness(t)
	verify := func(t *testing.T) store.Verification {
		t.Helper()
		res := h.do(t, call{method: "GET", path: "/v1/admin/audit/verify", token: viewerToken})
		var v store.Verification
		if res.status != http.StatusOK || json.Unmarshal(res.body, &v) != nil {
			t.Fatalf("verify = %d %s", res.status, res.body)
		}
		return v
	}
	if v := verify(t); !v.OK || v.Entries != 0 {
		t.Fatalf("empty log verify = %+v", v)
	}
	h.admin(t, "POST", "/v1/admin/runtime/profile", map[string]any{"profile_name": "fallback", "phrase": "SET PROFILE FALLBACK", "reason": "incident"})
	h.do(t, call{method: "POST", path: "/v1/admin/runtime/profile", token: viewerToken, body: `{"profile_name":"primary","phrase":"SET PROFILE PRIMARY","reason":"back"}`})
	h.admin(t, "POST", "/v1/admin/runtime/profile", map[string]any{"profile_name": "primary", "phrase": "SET PROFILE PRIMARY", "reason": "recovered"})
	v := verify(t)
	if !v.OK || v.Entries != 3 || v.HeadSeq != 3 || v.HeadHash == "" {
		t.Fatalf("verify = %+v, want ok with 3 entries", v)
	}

	h.store.Store.(*memory.Store).Tamper(2, func(e *store.AuditEntry) { e.Actor = "admin:000000" })
	v = verify(t)
	if v.OK || v.FirstBad != 2 || v.Problem == "" {
		t.Fatalf("verify after tampering = %+v, want not ok naming entry 2", v)
	}
}
