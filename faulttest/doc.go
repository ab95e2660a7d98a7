// Package faulttest drives the real mplogin binary, as separate processes,
// through platform faults, bad input and (on request) a long soak, and checks
// that every answer is one the API allows (never a 500), that answers arrive
// within the platform deadline, and that the service stays healthy: /healthz
// and /readyz answer, logins succeed again once the fault is gone,
// goroutines do not pile up, nothing panics, and memory does not grow without
// bound.
//
//	go test -race -count=1 ./faulttest/                                           # faults and bad input, under a minute
//	MPLOGIN_SOAK=2m go test -count=1 -run TestSoak -timeout 10m -v ./faulttest/  # soak with rotating faults
//	MPLOGIN_FAULTTEST_BIN=/path/to/mplogin go test -count=1 ./faulttest/         # a binary built elsewhere
//
// RELIABILITY.md at the repository root records what was tried and what held.
//
// # The processes
//
// It holds tests only. The first test builds ./cmd/mplogin, once for the
// run (testutil.Build); without a binary every test fails, and with -short
// every test skips. Each test starts its own pair of processes on loopback
// (testutil.Process), each on a port of its own choosing:
//
//   - mplogin emulate --listen 127.0.0.1:0 --config F (credentials checked;
//     the soak adds --open-codes); the test reads the address it prints;
//   - mplogin serve --config F with listen 127.0.0.1:0, SQLite in a
//     temporary directory, platform_timeout 2s, rate limits off (all load
//     comes from one address), log level info (so that every request leaves
//     a line for the secret scan, and the test reads the address from the
//     line that says it listens), four WeChat apps and one Baidu app, all
//     pointed at the emulator.
//
// Fault rules go to the emulator with PUT /_emulator/faults and are removed
// with DELETE after each case.
//
// # What every answer must be
//
// Every answer of the service, in every test, is checked by contractError:
// a 2xx is 200 or 204, and a 500 is always a failure; an error is
// application/json with exactly {"error","message"}, an error code of
// docs/api.md, and that code's status; 429 and 503 carry a positive integer
// Retry-After; every answer has Cache-Control: no-store and an X-Request-Id;
// 401 invalid_token has WWW-Authenticate: Bearer.
//
// # After each case
//
//   - both processes still run, and /healthz and /readyz answer 200;
//   - with the faults removed, a login succeeds: at once, or, where the
//     breaker may have opened, by polling for at most 15 s;
//   - the service's go_goroutines, once the test's idle connections are
//     closed, is back within 24 of its value after warm-up (the platform
//     client keeps one idle connection per concurrent call, two goroutines
//     each);
//   - neither process's stderr has a panic, a fatal error, a goroutine dump,
//     a data race or a log line at ERROR;
//   - no line the service logged, no answer body and no answer header
//     carries a secret: the app secret, the master key, a session key (every
//     code the harness mints asks the emulator for a session key that starts
//     with a marker, so the scan finds one raw, in base64 or in hex), a
//     WeChat or Baidu access token, or, in the log, anything shaped like an
//     mplogin token. A test whose service logged no request line fails, so
//     the scan cannot pass by seeing nothing; TestSecretScan shows it
//     catching each form;
//   - at the end, SIGTERM stops both with exit status 0.
//
// # Time bounds on a shared machine
//
// A goroutine in the test process wakes every 5 ms and records every gap
// over 50 ms. An answer that takes longer than its bound fails the test
// unless the machine was seen to stall at least as long while it was under
// way; such allowances are logged. Polls of a child (recovered, goroutines
// settled) extend their bounds the same way. Nothing sleeps to synchronise
// except these bounded polls.
package faulttest
