package rediscache_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/store/rediscache"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		name       string
		url        string
		addrs      []string
		db         int
		master     string
		cluster    bool
		tls        bool
		user, pass string
		read       time.Duration
		retries    int
	}{
		{name: "single", url: "redis://localhost", addrs: []string{"localhost:6379"}, read: 250 * time.Millisecond, retries: 1},
		{name: "db and auth", url: "redis://u:p%40ss@10.0.0.1:6380/3", addrs: []string{"10.0.0.1:6380"}, db: 3,
			user: "u", pass: "p@ss", read: 250 * time.Millisecond, retries: 1},
		{name: "tls", url: "rediss://cache.example:6380", addrs: []string{"cache.example:6380"}, tls: true,
			read: 250 * time.Millisecond, retries: 1},
		{name: "timeouts", url: "redis://h?read_timeout=100ms&max_retries=0", addrs: []string{"h:6379"},
			read: 100 * time.Millisecond, retries: -1},
		{name: "sentinel", url: "redis://s1:26379/2?master_name=mymaster&addr=s2:26379&addr=s3:26379",
			addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, db: 2, master: "mymaster",
			read: 250 * time.Millisecond, retries: 1},
		{name: "cluster", url: "redis://n1:7000?addr=n2:7000", addrs: []string{"n1:7000", "n2:7000"}, cluster: true,
			read: 250 * time.Millisecond, retries: 1},
		{name: "cluster seed", url: "redis://n1:7000?cluster=true", addrs: []string{"n1:7000"}, cluster: true,
			read: 250 * time.Millisecond, retries: 1},
		{name: "ipv6", url: "redis://[::1]:6390", addrs: []string{"[::1]:6390"}, read: 250 * time.Millisecond, retries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := rediscache.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.Addrs, tt.addrs) || o.DB != tt.db || o.MasterName != tt.master ||
				o.IsClusterMode != tt.cluster || (o.TLSConfig != nil) != tt.tls ||
				o.Username != tt.user || o.Password != tt.pass || o.ReadTimeout != tt.read || o.MaxRetries != tt.retries {
				t.Fatalf("options = %+v", o)
			}
			if o.DialTimeout > time.Second || o.PoolTimeout > time.Second || o.DialerRetries != 1 || !o.ContextTimeoutEnabled {
				t.Fatalf("deadlines not bounded: %+v", o)
			}
		})
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, url := range []string{
		"http://localhost",
		"redis://",
		"redis://h/x",
		"redis://h?dial_timout=1s",
		"redis://h?read_timeout=soon",
		"redis://h?pool_size=-1",
		"redis://h1/1?addr=h2",
		"redis://u:secret@h:notaport",
	} {
		t.Run(url, func(t *testing.T) {
			_, err := rediscache.ParseURL(url)
			if switchyard.ErrorCode(err) != switchyard.CodeInvalidRequest {
				t.Fatalf("ParseURL(%q) = %v, want INVALID_REQUEST", url, err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}
