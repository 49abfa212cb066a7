package main

import (
	"net/http"
	"testing"
)

// serve mounts the operator console at /console/ unless it is turned off.
func TestConsoleSetting(t *testing.T) {
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		status int
	}{
		{"on by default", nil, nil, http.StatusOK},
		{"off by flag", nil, []string{"--console=false"}, http.StatusNotFound},
		{"off by environment", map[string]string{"SWITCHYARD_CONSOLE": "false"}, nil, http.StatusNotFound},
		{"the flag wins", map[string]string{"SWITCHYARD_CONSOLE": "false"}, []string{"--console"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServe(t, tt.env, tt.args...)
			defer s.stop()
			res, err := http.Get(s.url + "/console/sign-in")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.status {
				t.Fatalf("GET /console/sign-in = %d, want %d", res.StatusCode, tt.status)
			}
		})
	}
}
