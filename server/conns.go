package server

import (
	"container/list"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/mplogin/mplogin/metrics"
)

// connLimiter caps the connections a listener hands the HTTP server:
// perIP per client address (the TCP peer; an IPv6 peer by its prefix), and
// max in all. Idle keep-alive connections cost a file descriptor and some
// 20 KiB each, so without a cap one client holding thousands of them
// starves everyone else.
//
// A connection over its address's cap is closed at once, unanswered. At
// the overall cap a new connection closes the connection idle longest
// (between two requests), or failing that the oldest that has not yet sent
// a request, to make room: so a load balancer's health check still gets
// through while idle connections fill the cap; a newcomer is refused only
// when every connection is busy with a request. The server's ConnState
// must call connState, which is how the limiter knows which are idle.
type connLimiter struct {
	net.Listener
	max, perIP int
	v6bits     int
	// exempt peers (trusted proxies) have no per-address cap: every
	// client behind them shares their address.
	exempt  func(netip.Addr) bool
	metrics *metrics.Metrics
	log     *slog.Logger

	mu     sync.Mutex
	open   int
	byAddr map[netip.Prefix]int
	// idle holds the connections between two requests, in the order they
	// went idle; fresh those not yet past their first request, in the order
	// they came. Busy connections are in neither.
	idle, fresh list.List
	warned      map[string]time.Time // last warning per reason
	unwarned    map[string]int       // refusals since that warning
}

// warnEvery paces the warnings about refused connections: a flood of them
// is one line a minute, with the count.
const warnEvery = time.Minute

func newConnLimiter(ln net.Listener, total, perIP, v6bits int, exempt func(netip.Addr) bool, m *metrics.Metrics, log *slog.Logger) *connLimiter {
	return &connLimiter{Listener: ln, max: total, perIP: perIP, v6bits: v6bits, exempt: exempt, metrics: m, log: log,
		byAddr: make(map[netip.Prefix]int), warned: make(map[string]time.Time), unwarned: make(map[string]int)}
}

// limitedConn is a connection the limiter counts.
type limitedConn struct {
	net.Conn
	l   *connLimiter
	key netip.Prefix // the address it counts against; invalid when exempt
	// Guarded by l.mu: whether it still counts, and where it is listed.
	counted bool
	elem    *list.Element
	in      *list.List
}

// Close releases the connection's place, then closes it.
func (c *limitedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// CloseWrite lets the HTTP server half-close the connection before closing
// it, as it does a bare TCP connection, so that a client still sending
// does not lose the last answer to a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Accept returns the next connection within the caps, closing those over
// them.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc, victim, reason := l.admit(c)
		if victim != nil {
			_ = victim.Conn.Close()
			l.metrics.ConnectionClosed("evicted")
		}
		if lc != nil {
			return lc, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset: no TIME_WAIT left behind per refusal
		}
		_ = c.Close()
		l.refused(reason, c.RemoteAddr())
	}
}

// admit counts c in, making room if needed: victim, when set, is a
// connection to close for it. lc is nil when c is refused, for reason.
func (l *connLimiter) admit(c net.Conn) (lc, victim *limitedConn, reason string) {
	lc = &limitedConn{Conn: c, l: l}
	if a := addrOf(c.RemoteAddr()); l.perIP > 0 && a.IsValid() && !l.exempt(a) {
		lc.key = l.keyOf(a)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.key.IsValid() && l.byAddr[lc.key] >= l.perIP {
		return nil, nil, "per_ip"
	}
	if l.max > 0 && l.open >= l.max {
		if victim = l.oldest(); victim == nil {
			return nil, nil, "full"
		}
		l.forget(victim)
	}
	l.open++
	if lc.key.IsValid() {
		l.byAddr[lc.key]++
	}
	lc.counted = true
	l.list(lc, &l.fresh)
	l.metrics.Connections(l.open)
	return lc, victim, ""
}

// oldest is the connection to close for a newcomer: the one idle longest,
// else the oldest that has sent no request yet; nil when every connection
// is busy. l.mu is held.
func (l *connLimiter) oldest() *limitedConn {
	for _, ls := range []*list.List{&l.idle, &l.fresh} {
		if e := ls.Front(); e != nil {
			return e.Value.(*limitedConn)
		}
	}
	return nil
}

// connState follows the server's view of each connection.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !lc.counted {
		return // closed for a newcomer meanwhile
	}
	switch s {
	case http.StateActive:
		l.unlist(lc)
	case http.StateIdle:
		l.unlist(lc)
		l.list(lc, &l.idle)
	case http.StateHijacked, http.StateClosed:
		l.forget(lc)
		l.metrics.Connections(l.open)
	}
}

func (l *connLimiter) release(lc *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.counted {
		l.forget(lc)
		l.metrics.Connections(l.open)
	}
}

// forget stops counting lc. l.mu is held.
func (l *connLimiter) forget(lc *limitedConn) {
	l.unlist(lc)
	lc.counted = false
	l.open--
	if lc.key.IsValid() {
		if n := l.byAddr[lc.key] - 1; n > 0 {
			l.byAddr[lc.key] = n
		} else {
			delete(l.byAddr, lc.key)
		}
	}
}

func (l *connLimiter) list(lc *limitedConn, ls *list.List) {
	lc.elem, lc.in = ls.PushBack(lc), ls
}

func (l *connLimiter) unlist(lc *limitedConn) {
	if lc.in != nil {
		lc.in.Remove(lc.elem)
		lc.elem, lc.in = nil, nil
	}
}

// refused counts a refused connection and warns about refusals, at most
// once per warnEvery and reason.
func (l *connLimiter) refused(reason string, addr net.Addr) {
	l.metrics.ConnectionClosed(reason)
	now := time.Now()
	l.mu.Lock()
	n := l.unwarned[reason] + 1
	warn := now.Sub(l.warned[reason]) >= warnEvery
	if warn {
		l.warned[reason], l.unwarned[reason] = now, 0
	} else {
		l.unwarned[reason] = n
	}
	l.mu.Unlock()
	if !warn {
		return
	}
	switch reason {
	case "per_ip":
		client := "unknown"
		if a := addrOf(addr); a.IsValid() {
			client = l.keyOf(a).String()
		}
		l.log.Warn("connection refused: the client address holds http.max_connections_per_ip connections",
			"client", client, "max_connections_per_ip", l.perIP, "refused", n)
	default:
		l.log.Warn("connection refused: http.max_connections are open, none of them idle",
			"max_connections", l.max, "refused", n)
	}
}

// keyOf is the client a's connections count against: itself, or for IPv6
// its prefix.
func (l *connLimiter) keyOf(a netip.Addr) netip.Prefix {
	bits := a.BitLen()
	if a.Is6() {
		bits = l.v6bits
	}
	p, _ := a.Prefix(bits)
	return p
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
