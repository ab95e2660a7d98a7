package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// connRig is the service serving on a loopback listener, with every
// connection state change reported on states.
type connRig struct {
	addr   string
	states chan http.ConnState
}

func newConnRig(t *testing.T, change func(*config.HTTP)) *connRig {
	t.Helper()
	cfg := config.Default()
	cfg.Store = "sqlite:" + filepath.Join(t.TempDir(), "mplogin.db")
	cfg.MasterKey = bytes.Repeat([]byte{42}, 32)
	cfg.Apps = []config.App{{Name: "w", Flavor: platform.FlavorWeChat, AppID: "wx0123456789abcdef",
		Secret: secret.New("s"), Endpoint: "http://127.0.0.1:9"}}
	change(&cfg.HTTP)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), &cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &connRig{states: make(chan http.ConnState, 1024)}
	srv.onConnState = func(_ net.Conn, s http.ConnState) { r.states <- s }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	return r
}

// waitFor takes state changes until n of them were s.
func (r *connRig) waitFor(t *testing.T, s http.ConnState, n int) {
	t.Helper()
	for n > 0 {
		if <-r.states == s {
			n--
		}
	}
}

// client is one HTTP/1.1 keep-alive connection.
type client struct {
	net.Conn
	br *bufio.Reader
}

// dial connects from source, a loopback address.
func (r *connRig) dial(t *testing.T, source string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	c, err := d.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, br: bufio.NewReader(c)}
}

// get asks for path on the connection and returns the status, or the error
// of a connection the service closed.
func (c *client) get(path string) (int, error) {
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: mplogin\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf [512]byte
	for {
		if _, err := resp.Body.Read(buf[:]); err != nil {
			break
		}
	}
	return resp.StatusCode, nil
}

// closed reports whether the service has closed the connection: a read
// returns EOF or a reset. The deadline only bounds how long a failing test
// hangs; a closed connection answers at once.
func (c *client) closed() bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// One address cannot hold more than max_connections_per_ip connections:
// the next one from it is closed unanswered, while another address is
// served; once one of its connections ends, it may open another.
func TestConnectionsPerIP(t *testing.T) {
	r := newConnRig(t, func(h *config.HTTP) { h.MaxConnectionsPerIP = 3 })
	var held []*client
	for i := range 3 {
		c := r.dial(t, "127.0.0.1")
		if status, err := c.get("/healthz"); status != 200 {
			t.Fatalf("connection %d: %d %v", i, status, err)
		}
		held = append(held, c)
	}
	if status, err := r.dial(t, "127.0.0.1").get("/healthz"); err == nil {
		t.Fatalf("a 4th connection from one address was served: %d", status)
	}
	if status, err := r.dial(t, "127.0.0.2").get("/healthz"); status != 200 {
		t.Fatalf("another address: %d %v", status, err)
	}
	held[0].Close()
	r.waitFor(t, http.StateClosed, 1)
	if status, err := r.dial(t, "127.0.0.1").get("/healthz"); status != 200 {
		t.Fatalf("after one closed: %d %v", status, err)
	}
}

// With max_connections reached by idle keep-alive connections, a new
// client (the load balancer's health check) is served: the connection
// idle longest is closed to make room, the others stay usable.
func TestHealthzAtTheConnectionCap(t *testing.T) {
	r := newConnRig(t, func(h *config.HTTP) {
		h.MaxConnections, h.MaxConnectionsPerIP = 4, 0
		h.IdleTimeout = time.Minute // longer than closed waits
	})
	var idle []*client
	for i := range 4 {
		c := r.dial(t, "127.0.0.1")
		if status, err := c.get("/healthz"); status != 200 {
			t.Fatalf("connection %d: %d %v", i, status, err)
		}
		idle = append(idle, c)
		r.waitFor(t, http.StateIdle, 1)
	}
	if status, err := r.dial(t, "127.0.0.2").get("/healthz"); status != 200 {
		t.Fatalf("health check at the cap: %d %v", status, err)
	}
	if !idle[0].closed() {
		t.Fatal("the connection idle longest is still open: more than max_connections are open")
	}
	for i, c := range idle[1:] {
		if status, err := c.get("/healthz"); status != 200 {
			t.Fatalf("idle connection %d: %d %v", i+1, status, err)
		}
	}
}

// Connections that never send a request count too, and make room the same
// way.
func TestHealthzAtTheConnectionCapOfSilentConnections(t *testing.T) {
	r := newConnRig(t, func(h *config.HTTP) {
		h.MaxConnections, h.MaxConnectionsPerIP = 4, 0
		h.ReadHeaderTimeout, h.ReadTimeout = time.Minute, time.Minute // longer than closed waits
	})
	var silent []*client
	for range 4 {
		silent = append(silent, r.dial(t, "127.0.0.1"))
		r.waitFor(t, http.StateNew, 1)
	}
	if status, err := r.dial(t, "127.0.0.2").get("/healthz"); status != 200 {
		t.Fatalf("health check at the cap: %d %v", status, err)
	}
	if !silent[0].closed() {
		t.Fatal("the oldest silent connection is still open")
	}
}

// Connections busy with a request are never closed for a newcomer: at the
// cap with all of them busy, the newcomer is refused; once one is idle, it
// makes room.
func TestConnLimiterSparesBusyConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(ln, 2, 0, 56, func(netip.Addr) bool { return false }, nil, slog.New(slog.DiscardHandler))
	defer l.Close()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	accepted := make(chan net.Conn)
	accept := func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}
	var busy []net.Conn
	var clients []net.Conn
	for range 2 {
		clients = append(clients, dial())
		go accept()
		c := <-accepted
		l.connState(c, http.StateActive)
		busy = append(busy, c)
	}
	refused := dial()
	go accept()
	if _, err := refused.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection past the cap, all others busy, was not closed")
	}
	l.connState(busy[0], http.StateIdle)
	dial()
	if c := <-accepted; c == nil {
		t.Fatal("no connection accepted once one was idle")
	}
	if _, err := clients[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the idle connection was not closed for the newcomer")
	}
	// The busy one stays.
	_ = clients[1].SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := clients[1].Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the busy connection: %v, want it open", err)
	}
}
