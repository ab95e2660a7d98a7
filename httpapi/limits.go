package httpapi

import (
	"context"
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
}

// RouteLimits limit one route per client IP and per app.
type RouteLimits struct {
	IP, App ratelimit.Limiter
}

// limit asks l for key. Over the limit is rate_limited with Retry-After; a
// limiter that fails (Redis down) lets the request through and logs it: a
// limiter outage must not become a login outage.
func (h *Handler) limit(ctx context.Context, l ratelimit.Limiter, route, scope, key string) error {
	if l == nil {
		return nil
	}
	d, err := l.Allow(ctx, key)
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelWarn, "rate limiter failed; letting the request through",
			slog.String("route", route), slog.String("scope", scope), slog.Any("error", err))
		return nil
	}
	if d.Allowed {
		return nil
	}
	h.metrics.RateLimited(route, scope)
	h.log.LogAttrs(ctx, slog.LevelInfo, "rate limited", slog.String("route", route), slog.String("scope", scope))
	return &mplogin.Error{Code: mplogin.CodeRateLimited, Message: "too many requests; retry after the time in Retry-After",
		RetryAfter: max(d.RetryAfter, time.Second)}
}

// limitIP limits a route by the request's client IP.
func (h *Handler) limitIP(req *request, l ratelimit.Limiter, route string) error {
	if l == nil {
		return nil
	}
	return h.limit(req.r.Context(), l, route, "ip", route+":ip:"+h.clientIP(req.r))
}

// limitApp limits a route by app (a configured app's name).
func (h *Handler) limitApp(req *request, l ratelimit.Limiter, route, app string) error {
	if l == nil || app == "" {
		return nil
	}
	return h.limit(req.r.Context(), l, route, "app", route+":app:"+app)
}

// clientIP is the peer's address, or, when the peer is a trusted proxy, the
// address X-Forwarded-For names before the trusted proxies: the rightmost
// entry that is not itself a trusted proxy (entries further left are
// whatever the client wrote). IPv6 clients count by their /64, which one
// subscriber usually holds whole.
func (h *Handler) clientIP(r *http.Request) string {
	addr := peer(r)
	if addr.IsValid() && h.trusted(addr) {
		hops := r.Header.Values("X-Forwarded-For")
		for i := len(hops) - 1; i >= 0; i-- {
			parts := strings.Split(hops[i], ",")
			stop := false
			for j := len(parts) - 1; j >= 0; j-- {
				a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
				if err != nil {
					stop = true // garbage: trust nothing further left
					break
				}
				addr = a.Unmap()
				if !h.trusted(addr) {
					stop = true
					break
				}
			}
			if stop {
				break
			}
		}
	}
	if !addr.IsValid() {
		return "unknown"
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
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
	return a.Unmap()
}
