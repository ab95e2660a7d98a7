package faulttest

// The suite runs the binary, not these packages; importing them makes the
// test binary, and so go test's cached result, depend on the service's code,
// so that a change to the service is never answered with a stale cached PASS
// (only cmd/mplogin's own files are not covered; CI runs with -count=1).
import (
	_ "github.com/mplogin/mplogin/emulator"
	_ "github.com/mplogin/mplogin/server"
)
