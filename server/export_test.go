package server

import "net"

// SetOnListen has Serve tell f of each listener of its own (admin,
// metrics) once it is bound, for tests that must know its address.
func SetOnListen(s *Server, f func(name string, addr net.Addr)) { s.onListen = f }
