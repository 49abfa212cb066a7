package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// TestConcurrentEvaluationsAndChanges runs evaluators, pinned sessions,
// session creators and operators at once (run it with -race). Live reads
// never go back in revision, pinned reads never move, every change is
// applied and audited exactly once.
func TestConcurrentEvaluationsAndChanges(t *testing.T) {
	h := newHarness(t)
	if res := h.do(t, call{method: "POST", path: "/v1/sessions", body: `{"session_id":"steady"}`}); res.status != http.StatusCreated {
		t.Fatalf("create = %d %s", res.status, res.body)
	}
	const (
		readers    = 6
		reads      = 60
		operators  = 2
		toggles    = 10
		creators   = 4
		evalBody   = `{"context":{"targetingKey":"u"}}`
		pinnedBody = `{"context":{"targetingKey":"u","sessionId":"steady"}}`
	)
	var wg sync.WaitGroup
	var created atomic.Int32
	evaluate := func(body string) (value bool, revision float64, pinned bool, err error) {
		res, err := h.send(call{method: "POST", path: "/ofrep/v1/evaluate/flags/EXAM_MODE", body: body})
		if err != nil {
			return false, 0, false, err
		}
		var got struct {
			Value    bool
			Metadata struct {
				Revision float64
				Pinned   bool
			}
		}
		if res.status != http.StatusOK || json.Unmarshal(res.body, &got) != nil {
			return false, 0, false, fmt.Errorf("evaluate = %d %s", res.status, res.body)
		}
		return got.Value, got.Metadata.Revision, got.Metadata.Pinned, nil
	}
	for r := range readers {
		wg.Go(func() {
			last := 0.0
			for range reads {
				if r%2 == 1 {
					value, revision, pinned, err := evaluate(pinnedBody)
					if err != nil || value || revision != 1 || !pinned {
						t.Errorf("pinned read = %v at revision %v pinned %v, %v; want false at revision 1", value, revision, pinned, err)
						return
					}
					continue
				}
				_, revision, _, err := evaluate(evalBody)
				if err != nil || revision < last {
					t.Errorf("live read went from revision %v to %v (%v)", last, revision, err)
					return
				}
				last = revision
			}
		})
	}
	for o := range operators {
		wg.Go(func() {
			for i := range toggles {
				on := (o+i)%2 == 0
				phrase := "DISABLE EXAM MODE"
				if on {
					phrase = "ENABLE EXAM MODE"
				}
				res, err := h.send(call{method: "POST", path: "/v1/admin/system/exam-mode", token: adminToken,
					body: fmt.Sprintf(`{"enabled":%v,"phrase":%q,"reason":"operator %d"}`, on, phrase, o)})
				if err != nil || res.status != http.StatusOK {
					t.Errorf("toggle = %v, %v", res, err)
					return
				}
			}
		})
	}
	for range creators {
		wg.Go(func() {
			res, err := h.send(call{method: "POST", path: "/v1/sessions", body: `{"session_id":"contended"}`})
			if err != nil || (res.status != http.StatusCreated && res.status != http.StatusOK) {
				t.Errorf("create = %v, %v", res, err)
				return
			}
			if res.status == http.StatusCreated {
				created.Add(1)
			}
		})
	}
	wg.Wait()
	if n := created.Load(); n != 1 {
		t.Fatalf("%d creates of one session answered 201, want exactly 1", n)
	}
	if cur := h.current(t); cur.Number != 1+operators*toggles {
		t.Fatalf("current revision %d, want %d", cur.Number, 1+operators*toggles)
	}
	res := h.do(t, call{method: "GET", path: "/v1/admin/audit/verify", token: viewerToken})
	if v := res.json(t); v["ok"] != true || v["entries"] != float64(operators*toggles) {
		t.Fatalf("verify = %v", v)
	}
}
