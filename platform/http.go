package platform

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// HTTPConfig bounds every phase of an outbound call. Zero fields take the
// defaults of DefaultHTTPConfig.
type HTTPConfig struct {
	DialTimeout           time.Duration
	TLSHandshakeTimeout   time.Duration
	ResponseHeaderTimeout time.Duration
	// Timeout bounds a whole request, body included.
	Timeout             time.Duration
	IdleConnTimeout     time.Duration
	MaxIdleConnsPerHost int
}

// DefaultHTTPConfig is what NewHTTPClient uses for zero fields.
var DefaultHTTPConfig = HTTPConfig{
	DialTimeout:           2 * time.Second,
	TLSHandshakeTimeout:   3 * time.Second,
	ResponseHeaderTimeout: 5 * time.Second,
	Timeout:               10 * time.Second,
	IdleConnTimeout:       90 * time.Second,
	MaxIdleConnsPerHost:   64,
}

// NewHTTPClient returns a client for one platform with every timeout set and
// redirects refused (a platform API never redirects; following one could
// send our query string, secret included, somewhere else).
func NewHTTPClient(c HTTPConfig) *http.Client {
	d := DefaultHTTPConfig
	pick := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	maxIdle := c.MaxIdleConnsPerHost
	if maxIdle <= 0 {
		maxIdle = d.MaxIdleConnsPerHost
	}
	dialer := &net.Dialer{Timeout: pick(c.DialTimeout, d.DialTimeout), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   pick(c.TLSHandshakeTimeout, d.TLSHandshakeTimeout),
		ResponseHeaderTimeout: pick(c.ResponseHeaderTimeout, d.ResponseHeaderTimeout),
		IdleConnTimeout:       pick(c.IdleConnTimeout, d.IdleConnTimeout),
		MaxIdleConns:          maxIdle * 4,
		MaxIdleConnsPerHost:   maxIdle,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{
		Transport: tr,
		Timeout:   pick(c.Timeout, d.Timeout),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
