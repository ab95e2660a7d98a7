// Package metrics is the service's Prometheus instrumentation, on a private
// registry so that nothing a library registers on the global default one leaks
// into our exposition, and so that tests can build as many as they like.
//
// # Labels
//
// No label ever carries an openid, a unionid, a user id, a session or token
// id, an IP address, a login code or any other per-user or secret value:
// every label value comes from a small closed set, and the
// recording methods enforce that rather than trusting callers:
//
//   - route: one of the route templates given to New ("/v1/login"), never a
//     raw path; anything else is "other".
//   - status: the numeric HTTP status ("200"); outside 100–599, "other".
//   - result: "ok" or a platform error kind ("invalid_code", "busy", …, see
//     Result); anything else is "other".
//   - scope: "ip", "session" or "app" (which limit was hit, not whose);
//     else "other".
//   - reason: "per_ip", "full" or "evicted" (why the service closed a
//     connection); else "other".
//   - platform, endpoint, app, op, name: values written in code or
//     configuration (appids are configuration). They are not free to grow:
//     each label keeps at most a fixed number of distinct values (see the
//     max* constants), values that are long or not valid UTF-8 are refused,
//     and the rest become "other".
//
// Every recording method is a no-op on a nil *Metrics, so packages can take an
// optional *Metrics and tests can pass nil.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Other is the label value that stands for anything outside a label's closed
// set.
const Other = "other"

// Caps on the distinct values of the labels whose set is written in code or
// configuration rather than fixed here. They are far above what the service
// uses; they exist so that a caller passing request data by mistake costs a
// few extra series, not unbounded memory.
const (
	maxPlatforms = 32
	maxEndpoints = 64
	maxApps      = 256
	maxOps       = 64
	maxBreakers  = 128
	// maxValueLen refuses long values, which are never template names.
	maxValueLen = 64
)

// statusMin and statusMax bound the status codes kept as such.
const (
	statusMin = 100
	statusMax = 599
)

// Metrics holds the service's collectors and their registry.
type Metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	platformCalls    *prometheus.CounterVec
	platformDuration *prometheus.HistogramVec
	tokenRefreshes   *prometheus.CounterVec
	decryptFailures  *prometheus.CounterVec
	storeErrors      *prometheus.CounterVec
	storeInternal    *prometheus.CounterVec
	breakerState     *prometheus.GaugeVec
	rateLimited      *prometheus.CounterVec
	connsOpen        prometheus.Gauge
	connsClosed      *prometheus.CounterVec
	swept            prometheus.Counter
	sweepDuration    prometheus.Histogram

	// routes is fixed by New and only read afterwards, so it needs no lock.
	routes map[string]*route
	other  *route

	platforms, endpoints, apps, ops, breakers *labelSet
}

// route caches the children of one route template, so that Request neither
// hashes label values nor allocates on the hot path.
type route struct {
	name     string
	duration prometheus.Observer
	// status[code-statusMin] is created on first use, and the last slot,
	// for status "other", too: a series appears only once it has counted
	// something.
	status [statusMax - statusMin + 2]atomic.Pointer[counter]
}

// counter boxes a prometheus.Counter for atomic.Pointer.
type counter struct{ prometheus.Counter }

// New returns metrics on a new private registry, with the Go runtime and
// process collectors. routes are the route templates Request and RateLimited
// accept as labels ("/v1/login"); any other route is recorded as "other".
func New(routes ...string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_http_requests_total",
			Help: "HTTP requests served, by route template and status code.",
		}, []string{"route", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mplogin_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		platformCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_platform_calls_total",
			Help: "Calls to a platform API, by platform, endpoint and result (ok or the error kind).",
		}, []string{"platform", "endpoint", "result"}),
		platformDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mplogin_platform_call_duration_seconds",
			Help:    "Time of a call to a platform API, by platform and endpoint.",
			Buckets: prometheus.DefBuckets,
		}, []string{"platform", "endpoint"}),
		tokenRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_access_token_refreshes_total",
			Help: "Refreshes of a platform access token, by platform and result.",
		}, []string{"platform", "result"}),
		decryptFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_decrypt_failures_total",
			Help: "encryptedData that failed to decrypt or verify, by appid.",
		}, []string{"app"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_store_errors_total",
			Help: "Store outages (answered store_unavailable), by route.",
		}, []string{"op"}),
		storeInternal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_store_internal_errors_total",
			Help: "Store failures other than outages (a bug, a broken constraint; answered internal_error), by store operation.",
		}, []string{"op"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mplogin_breaker_state",
			Help: "Circuit breaker state per platform endpoint: 0 closed, 1 half-open, 2 open.",
		}, []string{"name"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_rate_limited_total",
			Help: "Requests refused by a rate limit, by route template and the limit's scope (ip, session or app).",
		}, []string{"route", "scope"}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mplogin_http_connections",
			Help: "Client connections open, within http.max_connections.",
		}),
		connsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mplogin_http_connections_closed_total",
			Help: "Connections the service closed to keep within its connection caps: per_ip (a new one over " +
				"http.max_connections_per_ip), full (a new one at http.max_connections, none idle to close), " +
				"evicted (an idle one closed to make room for a new one).",
		}, []string{"reason"}),
		swept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mplogin_swept_total",
			Help: "Expired login codes and dead sessions the janitor deleted.",
		}),
		sweepDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "mplogin_sweep_duration_seconds",
			Help: "Time of one sweep of the janitor, its rests between chunks included.",
			// A sweep deletes in chunks and rests between them: minutes, when
			// a great many sessions end at once.
			Buckets: []float64{0.001, 0.01, 0.1, 1, 10, 60, 600},
		}),
		routes:    make(map[string]*route, len(routes)),
		platforms: newLabelSet(maxPlatforms),
		endpoints: newLabelSet(maxEndpoints),
		apps:      newLabelSet(maxApps),
		ops:       newLabelSet(maxOps),
		breakers:  newLabelSet(maxBreakers),
	}
	reg.MustRegister(
		m.requests, m.requestDuration,
		m.platformCalls, m.platformDuration,
		m.tokenRefreshes, m.decryptFailures, m.storeErrors, m.storeInternal,
		m.breakerState, m.rateLimited, m.connsOpen, m.connsClosed,
		m.swept, m.sweepDuration,
	)
	m.other = m.newRoute(Other)
	for _, r := range routes {
		if _, dup := m.routes[r]; dup || r == Other || !validValue(r) {
			continue
		}
		m.routes[r] = m.newRoute(r)
	}
	return m
}

func (m *Metrics) newRoute(name string) *route {
	return &route{name: name, duration: m.requestDuration.WithLabelValues(name)}
}

// Handler serves the registry in the Prometheus exposition formats. It is
// meant for an internal listener: the metrics are not secret, but they are
// not the public's business either. On a nil *Metrics it answers 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// Serve what could be gathered rather than nothing, and count the
		// failures in promhttp_metric_handler_errors_total.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		MaxRequestsInFlight: 4,
	})
}

// Registry returns the private registry, for adding collectors or gathering
// in tests; nil on a nil *Metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Request records one served HTTP request. route must be the route template
// the router matched ("/v1/login"), not the request's path; routes not given
// to New count as "other".
func (m *Metrics) Request(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	r := m.routes[route]
	if r == nil {
		r = m.other
	}
	r.duration.Observe(d.Seconds())
	r.statusCounter(m.requests, status).Inc()
}

// statusCounter returns the child for code, creating and caching it on first
// use. Concurrent first uses may both call WithLabelValues; the vector
// returns the same child to both.
func (r *route) statusCounter(vec *prometheus.CounterVec, code int) prometheus.Counter {
	i, label := code-statusMin, ""
	if code < statusMin || code > statusMax {
		i, label = len(r.status)-1, Other
	}
	slot := &r.status[i]
	if c := slot.Load(); c != nil {
		return c.Counter
	}
	if label == "" {
		label = strconv.Itoa(code)
	}
	c := &counter{vec.WithLabelValues(r.name, label)}
	slot.Store(c)
	return c.Counter
}

// PlatformCall records one call to a platform API. flavor is the app's
// platform key ("wechat-component"), the "platform" label; result is "ok"
// or the platform.Kind name of the failure ("busy", "unavailable", …).
func (m *Metrics) PlatformCall(flavor, endpoint, result string, d time.Duration) {
	if m == nil {
		return
	}
	p, e := m.platforms.value(flavor), m.endpoints.value(endpoint)
	m.platformCalls.WithLabelValues(p, e, Result(result)).Inc()
	m.platformDuration.WithLabelValues(p, e).Observe(d.Seconds())
}

// TokenRefresh records one refresh of a platform access token; flavor and
// result as for PlatformCall.
func (m *Metrics) TokenRefresh(flavor, result string) {
	if m == nil {
		return
	}
	m.tokenRefreshes.WithLabelValues(m.platforms.value(flavor), Result(result)).Inc()
}

// DecryptFailure records an encryptedData that failed to decrypt or
// verify, for the configured app; never the session or the user.
func (m *Metrics) DecryptFailure(app string) {
	if m == nil {
		return
	}
	m.decryptFailures.WithLabelValues(m.apps.value(app)).Inc()
}

// StoreError records a store outage in operation op ("refresh_rotate"; the
// service passes the route).
func (m *Metrics) StoreError(op string) {
	if m == nil {
		return
	}
	m.storeErrors.WithLabelValues(m.ops.value(op)).Inc()
}

// StoreInternalError records a store call that failed for another reason
// than an outage, which trying again will not fix: op is the store
// operation ("get identity").
func (m *Metrics) StoreInternalError(op string) {
	if m == nil {
		return
	}
	m.storeInternal.WithLabelValues(m.ops.value(op)).Inc()
}

// BreakerState sets the state gauge of the circuit breaker called name: 0
// closed, 1 half-open, 2 open (int(breaker.State) as is).
func (m *Metrics) BreakerState(name string, state int) {
	if m == nil {
		return
	}
	m.breakerState.WithLabelValues(m.breakers.value(name)).Set(float64(state))
}

// RateLimited records a request refused by a rate limit: route as for
// Request (the route template, "POST /v1/login"), scope "ip", "session" or
// "app" (the kind of limit, never the key).
func (m *Metrics) RateLimited(route, scope string) {
	if m == nil {
		return
	}
	if _, ok := m.routes[route]; !ok {
		route = Other
	}
	switch scope {
	case "ip", "session", "app":
	default:
		scope = Other
	}
	m.rateLimited.WithLabelValues(route, scope).Inc()
}

// Connections sets how many client connections are open.
func (m *Metrics) Connections(n int) {
	if m == nil {
		return
	}
	m.connsOpen.Set(float64(n))
}

// ConnectionClosed records a connection closed to keep within the
// connection caps: reason "per_ip", "full" or "evicted".
func (m *Metrics) ConnectionClosed(reason string) {
	if m == nil {
		return
	}
	switch reason {
	case "per_ip", "full", "evicted":
	default:
		reason = Other
	}
	m.connsClosed.WithLabelValues(reason).Inc()
}

// Swept records one sweep of the janitor: n rows deleted in d.
func (m *Metrics) Swept(n int, d time.Duration) {
	if m == nil {
		return
	}
	m.swept.Add(float64(n))
	m.sweepDuration.Observe(d.Seconds())
}

// Result returns r if it is a result label value, else "other". The set is
// "ok", the names of platform.Kind (platform imports nothing of ours, and we
// import nothing of its, so the list is repeated here and checked by a test),
// and "breaker_open" for calls a circuit breaker refused.
func Result(r string) string {
	switch r {
	case "ok",
		"unknown", "invalid_code", "code_used", "rate_limited", "user_blocked",
		"bad_credentials", "token_invalid", "busy", "unavailable",
		"breaker_open":
		return r
	}
	return Other
}

// labelSet admits up to max distinct values for one label, first come first
// served; later newcomers, and values that could not be a name written in
// code, become "other".
type labelSet struct {
	max  int
	mu   sync.RWMutex
	seen map[string]struct{}
}

func newLabelSet(max int) *labelSet {
	return &labelSet{max: max, seen: make(map[string]struct{})}
}

func (l *labelSet) value(v string) string {
	if !validValue(v) || v == Other {
		return Other
	}
	l.mu.RLock()
	_, ok := l.seen[v]
	l.mu.RUnlock()
	if ok {
		return v
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[v]; ok {
		return v
	}
	if len(l.seen) >= l.max {
		return Other
	}
	// Clone: v may be a slice of a large buffer we must not keep alive.
	v = strings.Clone(v)
	l.seen[v] = struct{}{}
	return v
}

// validValue refuses values that are empty, long or not UTF-8 (which the
// client library would panic on).
func validValue(v string) bool {
	return v != "" && len(v) <= maxValueLen && utf8.ValidString(v)
}
