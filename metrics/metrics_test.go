package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// family gathers m and returns the family called name, or nil.
func family(t *testing.T, m *Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

// series returns the metric of family name whose labels are exactly labels
// ("k=v" pairs), or nil.
func series(t *testing.T, m *Metrics, name string, labels ...string) *dto.Metric {
	t.Helper()
	f := family(t, m, name)
	if f == nil {
		return nil
	}
	want := strings.Join(labels, ",")
	for _, mt := range f.GetMetric() {
		if labelString(mt) == want {
			return mt
		}
	}
	return nil
}

func labelString(mt *dto.Metric) string {
	var ls []string
	for _, lp := range mt.GetLabel() {
		ls = append(ls, lp.GetName()+"="+lp.GetValue())
	}
	return strings.Join(ls, ",")
}

func counterValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mt := series(t, m, name, labels...)
	if mt == nil {
		t.Fatalf("no series %s{%s}", name, strings.Join(labels, ","))
	}
	return mt.GetCounter().GetValue()
}

func seriesCount(t *testing.T, m *Metrics, name string) int {
	t.Helper()
	f := family(t, m, name)
	if f == nil {
		return 0
	}
	return len(f.GetMetric())
}

func TestRequest(t *testing.T) {
	m := New("/v1/login", "/v1/refresh")
	m.Request("/v1/login", 200, 30*time.Millisecond)
	m.Request("/v1/login", 200, 70*time.Millisecond)
	m.Request("/v1/login", 429, time.Millisecond)
	m.Request("/v1/refresh", 401, time.Millisecond)
	m.Request("/v1/login/../../etc/passwd", 404, time.Millisecond)
	m.Request("/v1/users/o6_bmjrPTlm6_2sgVt7hMZOPfL2M", 200, time.Millisecond)
	m.Request("/v1/login", 0, time.Millisecond)
	m.Request("/v1/login", 1000, time.Millisecond)

	for _, c := range []struct {
		route, status string
		want          float64
	}{
		{"/v1/login", "200", 2},
		{"/v1/login", "429", 1},
		{"/v1/login", "other", 2},
		{"/v1/refresh", "401", 1},
		{"other", "404", 1},
		{"other", "200", 1},
	} {
		if got := counterValue(t, m, "mplogin_http_requests_total", "route="+c.route, "status="+c.status); got != c.want {
			t.Errorf("requests{%s,%s} = %v, want %v", c.route, c.status, got, c.want)
		}
	}

	h := series(t, m, "mplogin_http_request_duration_seconds", "route=/v1/login").GetHistogram()
	if h.GetSampleCount() != 5 {
		t.Errorf("login duration count = %d, want 5", h.GetSampleCount())
	}
	if got, want := h.GetSampleSum(), 0.103; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("login duration sum = %v, want %v", got, want)
	}
	if h := series(t, m, "mplogin_http_request_duration_seconds", "route=other").GetHistogram(); h.GetSampleCount() != 2 {
		t.Errorf("other duration count = %d, want 2", h.GetSampleCount())
	}
}

func TestRouteCardinality(t *testing.T) {
	routes := []string{"/v1/login", "/v1/refresh", "/v1/logout"}
	m := New(routes...)
	for i := range 10000 {
		m.Request(fmt.Sprintf("/v1/fake/%d", i), 200, time.Millisecond)
		m.RateLimited(fmt.Sprintf("/v1/fake/%d", i), "ip")
	}
	for _, r := range routes {
		m.Request(r, 200, time.Millisecond)
	}
	if n := seriesCount(t, m, "mplogin_http_requests_total"); n > len(routes)+1 {
		t.Errorf("requests series = %d, want at most %d", n, len(routes)+1)
	}
	if n := seriesCount(t, m, "mplogin_http_request_duration_seconds"); n > len(routes)+1 {
		t.Errorf("duration series = %d, want at most %d", n, len(routes)+1)
	}
	if n := seriesCount(t, m, "mplogin_rate_limited_total"); n != 1 {
		t.Errorf("rate-limited series = %d, want 1", n)
	}
	if got := counterValue(t, m, "mplogin_http_requests_total", "route=other", "status=200"); got != 10000 {
		t.Errorf("other = %v, want 10000", got)
	}
}

func TestFreeLabelsAreCapped(t *testing.T) {
	m := New()
	for i := range 10000 {
		id := fmt.Sprintf("o6_user%d", i)
		m.DecryptFailure(id)
		m.StoreError(id)
		m.StoreInternalError(id)
		m.BreakerState(id, 2)
		m.PlatformCall(id, id, id, time.Millisecond)
		m.TokenRefresh(id, id)
	}
	for name, max := range map[string]int{
		"mplogin_decrypt_failures_total":         maxApps + 1,
		"mplogin_store_errors_total":             maxOps + 1,
		"mplogin_store_internal_errors_total":    maxOps + 1,
		"mplogin_breaker_state":                  maxBreakers + 1,
		"mplogin_platform_calls_total":           (maxPlatforms + 1) * (maxEndpoints + 1),
		"mplogin_platform_call_duration_seconds": (maxPlatforms + 1) * (maxEndpoints + 1),
		"mplogin_access_token_refreshes_total":   maxPlatforms + 1,
	} {
		if n := seriesCount(t, m, name); n == 0 || n > max {
			t.Errorf("%s: %d series, want 1..%d", name, n, max)
		}
	}
	if got := counterValue(t, m, "mplogin_decrypt_failures_total", "app=other"); got != 10000-maxApps {
		t.Errorf("decrypt other = %v, want %d", got, 10000-maxApps)
	}
}

func TestInvalidValuesBecomeOther(t *testing.T) {
	m := New("/v1/login", "", strings.Repeat("x", 100), "bad\xff")
	m.DecryptFailure("")
	m.DecryptFailure(strings.Repeat("a", maxValueLen+1))
	m.DecryptFailure("bad\xffutf8")
	m.DecryptFailure("other")
	if got := counterValue(t, m, "mplogin_decrypt_failures_total", "app=other"); got != 4 {
		t.Errorf("decrypt other = %v, want 4", got)
	}
	if n := seriesCount(t, m, "mplogin_decrypt_failures_total"); n != 1 {
		t.Errorf("decrypt series = %d, want 1", n)
	}
	if len(m.routes) != 1 {
		t.Errorf("routes = %d, want only /v1/login", len(m.routes))
	}
}

func TestPlatformAndOthers(t *testing.T) {
	m := New("/v1/login")
	m.PlatformCall("wechat", "/sns/jscode2session", "ok", 100*time.Millisecond)
	m.PlatformCall("wechat", "/sns/jscode2session", "busy", 200*time.Millisecond)
	m.PlatformCall("wechat", "/sns/jscode2session", "something odd", time.Millisecond)
	m.TokenRefresh("wechat", "ok")
	m.TokenRefresh("baidu", "unavailable")
	m.DecryptFailure("wx1234567890abcdef")
	m.DecryptFailure("wx1234567890abcdef")
	m.StoreError("refresh_rotate")
	m.StoreInternalError("get identity")
	m.StoreInternalError("get identity")
	m.BreakerState("wechat:jscode2session", 2)
	m.BreakerState("wechat:jscode2session", 1)
	m.RateLimited("/v1/login", "ip")
	m.RateLimited("/v1/login", "app")
	m.RateLimited("/v1/login", "session")
	m.RateLimited("/v1/login", "203.0.113.7")
	m.ConnectionClosed("per_ip")
	m.ConnectionClosed("evicted")
	m.ConnectionClosed("evicted")
	m.ConnectionClosed("203.0.113.7")
	m.Swept(0, time.Millisecond)
	m.Swept(1200, 2*time.Second)

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mplogin_platform_calls_total", []string{"endpoint=/sns/jscode2session", "platform=wechat", "result=ok"}, 1},
		{"mplogin_platform_calls_total", []string{"endpoint=/sns/jscode2session", "platform=wechat", "result=busy"}, 1},
		{"mplogin_platform_calls_total", []string{"endpoint=/sns/jscode2session", "platform=wechat", "result=other"}, 1},
		{"mplogin_access_token_refreshes_total", []string{"platform=wechat", "result=ok"}, 1},
		{"mplogin_access_token_refreshes_total", []string{"platform=baidu", "result=unavailable"}, 1},
		{"mplogin_decrypt_failures_total", []string{"app=wx1234567890abcdef"}, 2},
		{"mplogin_store_errors_total", []string{"op=refresh_rotate"}, 1},
		{"mplogin_store_internal_errors_total", []string{"op=get identity"}, 2},
		{"mplogin_rate_limited_total", []string{"route=/v1/login", "scope=ip"}, 1},
		{"mplogin_rate_limited_total", []string{"route=/v1/login", "scope=app"}, 1},
		{"mplogin_rate_limited_total", []string{"route=/v1/login", "scope=session"}, 1},
		{"mplogin_rate_limited_total", []string{"route=/v1/login", "scope=other"}, 1},
		{"mplogin_http_connections_closed_total", []string{"reason=per_ip"}, 1},
		{"mplogin_http_connections_closed_total", []string{"reason=evicted"}, 2},
		{"mplogin_http_connections_closed_total", []string{"reason=other"}, 1},
		{"mplogin_swept_total", nil, 1200},
	} {
		if got := counterValue(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s{%v} = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	h := series(t, m, "mplogin_platform_call_duration_seconds", "endpoint=/sns/jscode2session", "platform=wechat").GetHistogram()
	if h.GetSampleCount() != 3 {
		t.Errorf("platform duration count = %d, want 3", h.GetSampleCount())
	}
	if h := series(t, m, "mplogin_sweep_duration_seconds").GetHistogram(); h.GetSampleCount() != 2 || h.GetSampleSum() < 2 {
		t.Errorf("sweep duration: %d sweeps, %v s; want 2, 2.001", h.GetSampleCount(), h.GetSampleSum())
	}
	if g := series(t, m, "mplogin_breaker_state", "name=wechat:jscode2session").GetGauge().GetValue(); g != 1 {
		t.Errorf("breaker gauge = %v, want 1", g)
	}
}

func TestRuntimeCollectors(t *testing.T) {
	m := New()
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds"} {
		if family(t, m, name) == nil {
			t.Errorf("no %s: Go collector missing", name)
		}
	}
	// The process collector only reports on platforms with procfs and co.
	if family(t, m, "process_start_time_seconds") == nil {
		t.Log("no process_start_time_seconds on this platform")
	}
}

func TestPrivateRegistries(t *testing.T) {
	// Two instances must not collide, as they would on the default registry.
	a, b := New("/v1/login"), New("/v1/login")
	a.Request("/v1/login", 200, time.Millisecond)
	if series(t, b, "mplogin_http_requests_total", "route=/v1/login", "status=200") != nil {
		t.Fatal("registries share state")
	}
}

func TestHandler(t *testing.T) {
	m := New("/v1/login")
	m.Request("/v1/login", 200, time.Millisecond)
	m.PlatformCall("wechat", "/sns/jscode2session", "ok", time.Millisecond)
	m.TokenRefresh("wechat", "ok")
	m.DecryptFailure("wxapp")
	m.StoreError("get")
	m.StoreInternalError("get")
	m.BreakerState("wechat:jscode2session", 0)
	m.RateLimited("/v1/login", "ip")

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text exposition", ct)
	}
	text := string(body)
	for _, want := range []string{
		`mplogin_http_requests_total{route="/v1/login",status="200"} 1`,
		"mplogin_http_request_duration_seconds_bucket",
		"mplogin_platform_calls_total",
		"mplogin_platform_call_duration_seconds_bucket",
		"mplogin_access_token_refreshes_total",
		"mplogin_decrypt_failures_total",
		"mplogin_store_errors_total",
		"mplogin_store_internal_errors_total",
		"mplogin_breaker_state",
		"mplogin_rate_limited_total",
		"go_goroutines",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
}

func TestNil(t *testing.T) {
	var m *Metrics
	m.Request("/v1/login", 200, time.Second)
	m.PlatformCall("wechat", "/sns/jscode2session", "ok", time.Second)
	m.TokenRefresh("wechat", "ok")
	m.DecryptFailure("wxapp")
	m.StoreError("get")
	m.StoreInternalError("get")
	m.BreakerState("x", 2)
	m.RateLimited("/v1/login", "ip")
	m.Connections(3)
	m.ConnectionClosed("per_ip")
	m.Swept(1, time.Second)
	if m.Registry() != nil {
		t.Error("nil Registry() != nil")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Handler status = %d, want 404", rec.Code)
	}
}

func TestConcurrent(t *testing.T) {
	m := New("/v1/login", "/v1/refresh")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				m.Request("/v1/login", 200+i%5, time.Millisecond)
				m.Request(fmt.Sprint(g), 500, time.Millisecond)
				m.PlatformCall("wechat", fmt.Sprint("/e", i%3), "ok", time.Millisecond)
				m.DecryptFailure(fmt.Sprint("app", i%300))
			}
		})
	}
	wg.Wait()
	var total float64
	for code := 200; code < 205; code++ {
		total += counterValue(t, m, "mplogin_http_requests_total", "route=/v1/login", fmt.Sprintf("status=%d", code))
	}
	if total != 8000 {
		t.Errorf("login total = %v, want 8000", total)
	}
	if n := seriesCount(t, m, "mplogin_decrypt_failures_total"); n != maxApps+1 {
		t.Errorf("decrypt series = %d, want %d", n, maxApps+1)
	}
}

func TestResult(t *testing.T) {
	var got []string
	for _, r := range []string{"ok", "busy", "breaker_open", "", "OK", "40029", "o6_user"} {
		got = append(got, Result(r))
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "breaker_open busy ok other other other other" {
		t.Errorf("Result = %v", got)
	}
}

func TestRequestAllocs(t *testing.T) {
	m := New("/v1/login")
	m.Request("/v1/login", 200, time.Millisecond) // create the child
	if n := testing.AllocsPerRun(1000, func() {
		m.Request("/v1/login", 200, time.Millisecond)
		m.Request("/unknown", 404, time.Millisecond)
	}); n != 0 {
		t.Errorf("Request allocates %v times per call", n)
	}
}

func BenchmarkRequest(b *testing.B) {
	m := New("/v1/login", "/v1/refresh", "/v1/logout", "/v1/userdata/decrypt")
	b.ReportAllocs()
	for b.Loop() {
		m.Request("/v1/login", 200, 12*time.Millisecond)
	}
}

func BenchmarkRequestParallel(b *testing.B) {
	m := New("/v1/login", "/v1/refresh", "/v1/logout", "/v1/userdata/decrypt")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("/v1/login", 200, 12*time.Millisecond)
		}
	})
}

func BenchmarkPlatformCall(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.PlatformCall("wechat", "/sns/jscode2session", "ok", 80*time.Millisecond)
	}
}

func BenchmarkNil(b *testing.B) {
	var m *Metrics
	b.ReportAllocs()
	for b.Loop() {
		m.Request("/v1/login", 200, 12*time.Millisecond)
	}
}
