package provider_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchyard-dev/switchyard/provider"
)

// fakeOFREP answers every single-flag evaluation with status and body and
// counts the calls; the bulk probe at Init succeeds.
func fakeOFREP(t *testing.T, status int, header http.Header, body string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ofrep/v1/evaluate/flags" {
			_, _ = io.WriteString(w, `{"flags":[]}`)
			return
		}
		calls.Add(1)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestRemoteAnswers(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		want       string
		wantReason openfeature.Reason
		wantCode   openfeature.ErrorCode
	}{
		{"success", http.StatusOK, `{"key":"f","value":"blue","reason":"TARGETING_MATCH","variant":"b","metadata":{"n":3}}`,
			"blue", openfeature.TargetingMatchReason, ""},
		{"success without value: the code default", http.StatusOK, `{"key":"f","reason":"DISABLED","metadata":{}}`,
			"mine", openfeature.DisabledReason, ""},
		{"wrong type", http.StatusOK, `{"key":"f","value":true,"reason":"STATIC"}`,
			"mine", openfeature.ErrorReason, openfeature.TypeMismatchCode},
		{"not found", http.StatusNotFound, `{"key":"f","errorCode":"FLAG_NOT_FOUND","errorDetails":"no f"}`,
			"mine", openfeature.ErrorReason, openfeature.FlagNotFoundCode},
		{"parse error", http.StatusBadRequest, `{"key":"f","errorCode":"PARSE_ERROR","errorDetails":"bad rule"}`,
			"mine", openfeature.ErrorReason, openfeature.ParseErrorCode},
		{"server error", http.StatusInternalServerError, `{"errorDetails":"boom"}`,
			"mine", openfeature.ErrorReason, openfeature.GeneralCode},
		{"not JSON", http.StatusOK, `<html>`, "mine", openfeature.ErrorReason, openfeature.GeneralCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := fakeOFREP(t, tt.status, nil, tt.body)
			p, err := provider.New(srv.URL, provider.WithMode(provider.Remote))
			if err != nil {
				t.Fatal(err)
			}
			d := p.StringEvaluation(context.Background(), "f", "mine", openfeature.FlattenedContext{})
			rd := d.ResolutionDetail()
			if d.Value != tt.want || rd.Reason != tt.wantReason || rd.ErrorCode != tt.wantCode {
				t.Fatalf("= %q %s %s (%s), want %q %s %s", d.Value, rd.Reason, rd.ErrorCode, rd.ErrorMessage, tt.want, tt.wantReason, tt.wantCode)
			}
			if tt.name == "success" && rd.FlagMetadata["n"] != int64(3) {
				t.Fatalf("metadata = %#v, want n as int64", rd.FlagMetadata)
			}
		})
	}
}

// TestRemoteRetryAfter: a 429 makes evaluations fail fast, without a
// call, until Retry-After has passed.
func TestRemoteRetryAfter(t *testing.T) {
	for _, retry := range []string{"3600", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)} {
		srv, calls := fakeOFREP(t, http.StatusTooManyRequests, http.Header{"Retry-After": {retry}}, `{}`)
		p, err := provider.New(srv.URL, provider.WithMode(provider.Remote))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			d := p.BooleanEvaluation(context.Background(), "f", true, openfeature.FlattenedContext{})
			if rd := d.ResolutionDetail(); !d.Value || rd.ErrorCode != openfeature.GeneralCode {
				t.Fatalf("Retry-After %s: = %v %s, want the default with GENERAL", retry, d.Value, rd.ErrorCode)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("Retry-After %s: %d calls, want 1: the others must fail fast", retry, n)
		}
	}
}

// TestEnvironment: OFREP_ENDPOINT, OFREP_HEADERS and OFREP_TIMEOUT_MS apply
// where no option is given, and options win over them.
func TestEnvironment(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("X-Team") + "|" + r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, `{"key":"f","value":true,"reason":"STATIC"}`)
	}))
	defer srv.Close()
	t.Setenv(provider.EnvEndpoint, srv.URL)
	t.Setenv(provider.EnvHeaders, "X-Team=payments,Authorization=Bearer env")
	t.Setenv(provider.EnvTimeoutMS, "1500")
	tests := []struct {
		name string
		opts []provider.Option
		want string
	}{
		{"environment", nil, "payments|Bearer env"},
		{"options win", []provider.Option{provider.WithHeaders(http.Header{"X-Team": {"search"}}), provider.WithToken("tok")}, "search|Bearer tok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := provider.New("", append(tt.opts, provider.WithMode(provider.Remote))...)
			if err != nil {
				t.Fatal(err)
			}
			if d := p.BooleanEvaluation(context.Background(), "f", false, nil); !d.Value {
				t.Fatalf("evaluation = %+v", d)
			}
			if got.Load() != tt.want {
				t.Fatalf("headers %q, want %q", got.Load(), tt.want)
			}
		})
	}
	for _, bad := range []struct{ env, value string }{{provider.EnvTimeoutMS, "soon"}, {provider.EnvHeaders, "novalue"}, {provider.EnvEndpoint, "ftp://x"}} {
		t.Setenv(bad.env, bad.value)
		if _, err := provider.New(""); err == nil {
			t.Errorf("%s=%q: New succeeded, want an error", bad.env, bad.value)
		}
		t.Setenv(bad.env, map[string]string{provider.EnvTimeoutMS: "1500", provider.EnvHeaders: "", provider.EnvEndpoint: srv.URL}[bad.env])
	}
}
