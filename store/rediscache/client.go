package rediscache

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/switchyard-dev/switchyard"
)

// The client defaults: short enough that a dead Redis costs a read a
// fraction of a second, where go-redis' own defaults (5 s dials, 3 s reads,
// 3 retries, 5 dial attempts) cost seconds.
const (
	DefaultDialTimeout = 250 * time.Millisecond
	DefaultIOTimeout   = 250 * time.Millisecond
	DefaultPoolTimeout = 250 * time.Millisecond
)

// ParseURL reads a Redis URL (--redis-url, SWITCHYARD_REDIS_URL) into
// options for go-redis' universal client, so one setting names a single
// server, a Sentinel group or a Cluster:
//
//	redis://[user:password@]host[:port][/db]          one server
//	rediss://...                                      the same over TLS
//	redis://[user:password@]sentinel1:26379[/db]?master_name=mymaster&addr=sentinel2:26379
//	                                                  Sentinel: the host and every addr are sentinels;
//	                                                  sentinel_username and sentinel_password
//	                                                  authenticate to them, the user info to Redis
//	redis://[user:password@]node1:6379?addr=node2:6379&addr=node3:6379
//	                                                  Cluster: two or more addresses (or
//	                                                  cluster=true with one seed); no db
//
// Other parameters: dial_timeout, read_timeout, write_timeout, pool_timeout
// (Go durations, each 250ms by default), pool_size, max_retries (default 1,
// which survives a connection dropped by a Redis restart), client_name.
// Unknown parameters are refused, so a typo does not silently change
// nothing.
func ParseURL(raw string) (*redis.UniversalOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url's message would repeat the URL and its password.
		return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "redis URL: it does not parse as a URL")
	}
	o := &redis.UniversalOptions{
		DialTimeout: DefaultDialTimeout, ReadTimeout: DefaultIOTimeout, WriteTimeout: DefaultIOTimeout,
		PoolTimeout: DefaultPoolTimeout, MaxRetries: 1, MaxRetryBackoff: 50 * time.Millisecond,
		DialerRetries: 1, ContextTimeoutEnabled: true,
	}
	switch u.Scheme {
	case "rediss":
		o.TLSConfig = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	case "redis":
	default:
		return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "redis URL: scheme %q: want redis:// or rediss://", u.Scheme)
	}
	if u.Host == "" {
		return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "redis URL: no host")
	}
	host := u.Host
	if u.Port() == "" {
		host += ":6379"
	}
	o.Addrs = []string{host}
	o.Username = u.User.Username()
	o.Password, _ = u.User.Password()
	if db := strings.Trim(u.Path, "/"); db != "" {
		if o.DB, err = strconv.Atoi(db); err != nil || o.DB < 0 {
			return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "redis URL: database %q is not a number", db)
		}
	}
	if err := parseParams(u.Query(), o); err != nil {
		return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "redis URL: %v", err)
	}
	if o.MasterName == "" && (o.IsClusterMode || len(o.Addrs) > 1) {
		o.IsClusterMode = true
		if o.DB != 0 {
			return nil, switchyard.Errorf(switchyard.CodeInvalidRequest, "redis URL: a Cluster has no database %d", o.DB)
		}
	}
	return o, nil
}

// parseParams applies the query parameters ParseURL documents.
func parseParams(q url.Values, o *redis.UniversalOptions) error {
	durations := map[string]*time.Duration{
		"dial_timeout": &o.DialTimeout, "read_timeout": &o.ReadTimeout,
		"write_timeout": &o.WriteTimeout, "pool_timeout": &o.PoolTimeout,
	}
	ints := map[string]*int{"pool_size": &o.PoolSize, "max_retries": &o.MaxRetries}
	strs := map[string]*string{
		"master_name": &o.MasterName, "client_name": &o.ClientName,
		"sentinel_username": &o.SentinelUsername, "sentinel_password": &o.SentinelPassword,
	}
	for name, values := range q {
		v := values[len(values)-1]
		switch {
		case name == "addr":
			o.Addrs = append(o.Addrs, values...)
		case name == "cluster":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("cluster=%q: want true or false", v)
			}
			o.IsClusterMode = b
		case durations[name] != nil:
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("%s=%q: want a positive duration such as 300ms", name, v)
			}
			*durations[name] = d
		case ints[name] != nil:
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("%s=%q: want a number", name, v)
			}
			*ints[name] = n
		case strs[name] != nil:
			*strs[name] = v
		default:
			return fmt.Errorf("unknown parameter %q", name)
		}
	}
	// go-redis reads 0 retries as its default of 3; -1 means none.
	if o.MaxRetries == 0 {
		o.MaxRetries = -1
	}
	return nil
}

// NewClient builds the universal client ParseURL describes. It does not
// connect; the first call does, within its deadline.
func NewClient(raw string) (redis.UniversalClient, error) {
	o, err := ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return redis.NewUniversalClient(o), nil
}
