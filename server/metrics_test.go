package server_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/server"
)

// withMetricsListener sets metrics.listen to a free port.
func withMetricsListener() rigOption {
	return withConfig(func(cfg *config.Config) { cfg.Metrics = &config.Metrics{Listen: "127.0.0.1:0"} })
}

// With metrics.listen, Serve serves /metrics there and only there, beside
// the admin API, and stops both with the service.
func TestServeMetricsListener(t *testing.T) {
	r := newRig(t, withMetricsListener(), withAdmin())
	s := r.serve(t, "metrics", "admin")
	metricsURL := s.own["metrics"]
	get(t, s.public+"/healthz")
	resp, body := get(t, metricsURL+"/metrics")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("metrics listener: Content-Type %q", ct)
	}
	text := string(body)
	for _, want := range []string{
		`mplogin_http_requests_total{route="GET /healthz",status="200"} 1`,
		"mplogin_http_request_duration_seconds_bucket",
		"mplogin_http_connections ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The public listener, and the API's handler, know no /metrics.
	for _, base := range []string{s.public, r.api.URL} {
		if status, v := callBase(t, base, "GET", "/metrics", "", ""); status != 404 || v["error"] != "not_found" {
			t.Errorf("%s/metrics: %d %v", base, status, v)
		}
	}
	// The metrics listener serves nothing else.
	for _, p := range []string{"/healthz", "/admin/v1/users/nobody", "/v1/session"} {
		if status, v := callBase(t, metricsURL, "GET", p, adminToken, ""); status != 404 || v["error"] != "not_found" {
			t.Errorf("metrics listener %s: %d %v", p, status, v)
		}
	}
	if status, _, v := adminCall(t, s.own["admin"], "GET", "/admin/v1/users/nobody", adminToken, ""); status != 404 || v["error"] != "not_found" {
		t.Errorf("admin listener: %d %v", status, v)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	for name, u := range s.own {
		if c, err := net.Dial("tcp", strings.TrimPrefix(u, "http://")); err == nil {
			c.Close()
			t.Errorf("the %s listener is still open after Serve returned", name)
		}
	}
}

// Without metrics.listen there is no listener of its own for /metrics:
// the API serves it (TestMetrics).
func TestNoMetricsListener(t *testing.T) {
	r := newRig(t)
	if r.srv.MetricsHandler() != nil {
		t.Error("a metrics handler without metrics.listen")
	}
	if err := r.srv.ServeMetrics(t.Context(), mustListen(t)); err == nil {
		t.Error("ServeMetrics without metrics.listen")
	}
	public := r.serve(t).public
	get(t, public+"/healthz")
	if _, text := get(t, public+"/metrics"); !strings.Contains(string(text), `mplogin_http_requests_total{route="GET /healthz",status="200"} 1`) {
		t.Errorf("public /metrics:\n%s", text)
	}
}

// A metrics listener that cannot listen stops the service before it
// serves, and leaves no other listener open.
func TestMetricsListenFails(t *testing.T) {
	taken := mustListen(t)
	r := newRig(t, withAdmin(), withConfig(func(cfg *config.Config) {
		cfg.Metrics = &config.Metrics{Listen: taken.Addr().String()}
	}))
	var adminAddr string
	server.SetOnListen(r.srv, func(name string, addr net.Addr) { adminAddr = addr.String() })
	err := r.srv.Serve(t.Context(), mustListen(t))
	var opErr *net.OpError
	if err == nil || !strings.HasPrefix(err.Error(), "metrics listen: ") || !errors.As(err, &opErr) {
		t.Fatalf("Serve: %v", err)
	}
	if adminAddr == "" {
		t.Fatal("the admin listener was not opened first")
	}
	if c, err := net.Dial("tcp", adminAddr); err == nil {
		c.Close()
		t.Error("the admin listener is still open")
	}
}
