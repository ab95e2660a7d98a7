package httpapi

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/ratelimit"
)

// Limits are the rate limiters of the routes that cost a platform call, a
// store write or a decryption. A nil limiter means no limit.
type Limits struct {
	Login, Refresh, Decrypt, Phone RouteLimits
	// Verify limits GET /v1/session?verify=platform, which calls the
	// platform; plain session checks are not limited.
	Verify RouteLimits
}

// RouteLimits limit one route per client IP, per session (the routes that
// act on one) and per app.
//
// A request is asked of them in that order, and of the app's last, after
// its body has been read and checked: a request that its client's own
// limits refuse, or that fails on what it sent, spends nothing of the
// bucket every client of the app shares. One client (an address, a
// session) can then take no more of that bucket than its own limits let
// through.
type RouteLimits struct {
	IP, Session, App ratelimit.Limiter
}

// DefaultIPv6Prefix is how many leading bits of an IPv6 address name one
// client when Config.IPv6Prefix is 0: a subscriber is usually given a /56
// whole, and can pick any address in it.
const DefaultIPv6Prefix = 56

// limit asks l for key. Over the limit is rate_limited with Retry-After; a
// limiter that fails (Redis down) lets the request through and logs it: a
// limiter outage must not become a login outage.
func (h *Handler) limit(req *request, l ratelimit.Limiter, scope, key string) error {
	if l == nil {
		return nil
	}
	ctx := req.r.Context()
	d, err := l.Allow(ctx, key)
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "rate limiter failed; letting the request through",
			slog.String("route", req.route), slog.String("scope", scope), slog.Any("error", err))
		return nil
	}
	if d.Allowed {
		return nil
	}
	h.metrics.RateLimited(req.route, scope)
	h.log.LogAttrs(ctx, slog.LevelInfo, "rate limited", slog.String("route", req.route), slog.String("scope", scope))
	return &mplogin.Error{Code: mplogin.CodeRateLimited, Message: "too many requests; retry after the time in Retry-After",
		RetryAfter: max(d.RetryAfter, time.Second)}
}

// The bucket keys are name:scope:who, name being the route's short name
// ("login", "verify"): stable across versions, since shared buckets live
// in Redis under them.

// limitIP limits a route by the request's client address.
func (h *Handler) limitIP(req *request, l ratelimit.Limiter, name string) error {
	if l == nil {
		return nil
	}
	return h.limit(req, l, "ip", name+":ip:"+h.clientKey(req.client))
}

// limitSession limits a route by session id (never by token: the key
// reaches Redis).
func (h *Handler) limitSession(req *request, l ratelimit.Limiter, name, sessionID string) error {
	if l == nil || sessionID == "" {
		return nil
	}
	return h.limit(req, l, "session", name+":session:"+sessionID)
}

// limitApp limits a route by app (a configured app's name).
func (h *Handler) limitApp(req *request, l ratelimit.Limiter, name, app string) error {
	if l == nil || app == "" {
		return nil
	}
	return h.limit(req, l, "app", name+":app:"+app)
}

// clientKey is the client a per-IP bucket counts: an IPv4 address, or the
// IPv6 prefix the address is in.
func (h *Handler) clientKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is6() {
		p, _ := a.Prefix(h.v6bits)
		return p.String()
	}
	return a.String()
}

// clientAddr is the peer's address, or, when the peer is a trusted proxy,
// the address X-Forwarded-For names before the trusted proxies: the
// rightmost entry that is not itself a trusted proxy (entries further left
// are whatever the client wrote). An entry may carry a port, as some load
// balancers write it (198.51.100.10:1234, [2001:db8::1]:443).
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	addr := peer(r)
	hops := r.Header.Values("X-Forwarded-For")
	if len(hops) == 0 || !addr.IsValid() {
		return addr
	}
	if !h.trusted(addr) {
		// Either a proxy nobody listed, which makes every client one, or
		// a client making up addresses. Said once: the first is a
		// configuration to fix, the second noise.
		if h.xffWarned.CompareAndSwap(false, true) {
			h.log.LogAttrs(r.Context(), slog.LevelWarn,
				"X-Forwarded-For ignored: the peer is not in http.trusted_proxies; behind a proxy or load balancer, "+
					"list its addresses there, or all its clients share one client address and its rate limits",
				slog.String("peer", addr.String()))
		}
		return addr
	}
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, ok := forwardedAddr(parts[j])
			if !ok {
				return addr // garbage: trust nothing further left
			}
			addr = a
			if !h.trusted(addr) {
				return addr
			}
		}
	}
	return addr
}

// forwardedAddr reads one X-Forwarded-For entry: an address, with or
// without a port ([v6]:port, v4:port, [v6]).
func forwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(s); err == nil {
			a = ap.Addr()
		} else if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
			a, err = netip.ParseAddr(s[1 : len(s)-1])
		}
	}
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

func (h *Handler) trusted(a netip.Addr) bool {
	for _, p := range h.proxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peer(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}
