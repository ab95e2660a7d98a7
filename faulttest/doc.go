// Package faulttest drives the real mplogin binary, as separate processes,
// through platform faults, bad input and (on request) a long soak, and checks
// that every answer is one the contract allows (never a 500), that answers
// arrive within the platform deadline, and that the service stays healthy:
// /healthz and /readyz answer, logins succeed again once the fault is gone,
// goroutines do not pile up, nothing panics, and memory does not grow without
// bound.
//
// It holds tests only. TestMain builds ./cmd/mplogin once into a temporary
// directory; every test starts `mplogin emulate` and `mplogin serve` on
// loopback and drives them over HTTP, setting the emulator's fault rules with
// PUT /_emulator/faults. If the binary cannot be built, the tests skip with
// the build error. MPLOGIN_FAULTTEST_BIN=/path/to/mplogin runs them against
// a binary built elsewhere instead.
//
//	go test -race -count=1 ./faulttest/                                           # faults and bad input, under a minute
//	MPLOGIN_SOAK=2m go test -count=1 -run TestSoak -timeout 10m -v ./faulttest/  # soak with rotating faults
//
// RELIABILITY.md at the repository root records what was tried and what held.
package faulttest
