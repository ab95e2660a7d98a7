package testutil

import (
	"crypto/rand"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy forwards a loopback port to a server (a database, Redis), so that a
// test can take the server away from what it tests and give it back without
// touching the server: Stop closes the listener and every forwarded
// connection, both sides; Start listens again on the same port.
type Proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener // nil while stopped
	conns        map[net.Conn]struct{}
	wg           sync.WaitGroup
}

// NewProxy starts a proxy to target (host:port), stopped and waited for
// when the test ends. It listens on a loopback port below the kernel's
// ephemeral range, so that no outgoing connection of another process takes
// the port as its source while the proxy is stopped.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 2000 {
				low = n
			}
		}
	}
	p := &Proxy{target: target, conns: map[net.Conn]struct{}{}}
	for try := 0; ; try++ {
		var b [2]byte
		_, _ = rand.Read(b[:])
		port := 1024 + (int(b[0])<<8|int(b[1]))%(low-1024)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			p.addr = ln.Addr().String()
			p.serve(ln)
			break
		}
		if try == 50 {
			t.Fatalf("proxy: no free port below %d: %v", low, err)
		}
	}
	t.Cleanup(func() { p.Stop(); p.wg.Wait() })
	return p
}

// Addr is the proxy's host:port, the same after Stop and Start.
func (p *Proxy) Addr() string { return p.addr }

// Start listens again on the proxy's port. The port was the proxy's until
// Stop; should the kernel still hold it for a moment, Start tries again
// briefly.
func (p *Proxy) Start() error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		ln, err := net.Listen("tcp", p.addr)
		if err == nil {
			p.serve(ln)
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond) // the kernel, not a process of ours, holds the port
	}
}

// Stop closes the listener and every forwarded connection; a client of the
// proxy is refused from then on, until Start. Stopping a stopped proxy does
// nothing.
func (p *Proxy) Stop() {
	p.mu.Lock()
	ln, conns := p.ln, p.conns
	p.ln, p.conns = nil, map[net.Conn]struct{}{}
	p.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for c := range conns {
		c.Close()
	}
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // stopped
			}
			p.wg.Add(1)
			go p.forward(ln, c)
		}
	}()
}

// track registers c as forwarded through ln; false when ln has been
// stopped meanwhile (then c must be closed, not forwarded).
func (p *Proxy) track(ln net.Listener, c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func (p *Proxy) forward(ln net.Listener, c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	if !p.track(ln, c) {
		return
	}
	defer p.untrack(c)
	u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	if !p.track(ln, u) {
		return
	}
	defer p.untrack(u)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	<-done
}
