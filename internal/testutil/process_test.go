package testutil_test

import (
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
)

// helperEnv makes the test binary, started by the tests below, act as the
// child named by its value instead of running tests.
const helperEnv = "TESTUTIL_HELPER"

// TestHelperProcess is the child: "serve" says it is ready and exits 0 on
// SIGTERM, "stubborn" ignores SIGTERM, "fail" exits 3 at once.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("the child of the process tests")
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	switch mode {
	case "fail":
		fmt.Fprintln(os.Stderr, "cannot start")
		os.Exit(3)
	case "serve":
		fmt.Println("log before")
		fmt.Fprintf(os.Stderr, "listening on 127.0.0.1:%d\n", 4242)
		<-term
		os.Exit(0)
	case "stubborn":
		fmt.Println("ready")
		select {}
	}
}

func helper(t *testing.T, mode string, ready string) *testutil.Process {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return testutil.StartProcess(t, mode, exe, []string{"-test.run=^TestHelperProcess$"}, testutil.ProcessOptions{
		Env:   append(os.Environ(), helperEnv+"="+mode),
		Ready: regexp.MustCompile(ready),
	})
}

func TestProcessReadyAndStop(t *testing.T) {
	p := helper(t, "serve", `listening on (\S+)`)
	m, err := p.WaitReady(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "127.0.0.1:4242" {
		t.Fatalf("ready line submatches %q", m)
	}
	if err := p.Stop(syscall.SIGTERM, 10*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !strings.Contains(p.Stdout(), "log before") || !strings.Contains(p.Stderr(), "listening on") {
		t.Fatalf("output not collected: stdout %q, stderr %q", p.Stdout(), p.Stderr())
	}
	if err := p.Stop(syscall.SIGTERM, time.Second); err == nil {
		t.Fatal("Stop of a stopped process succeeded")
	}
}

func TestProcessExitsBeforeReady(t *testing.T) {
	p := helper(t, "fail", `listening`)
	start := time.Now()
	_, err := p.WaitReady(time.Minute)
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") || !strings.Contains(err.Error(), "cannot start") {
		t.Fatalf("WaitReady: %v, want an exit with the child's stderr", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("WaitReady took %v for a child that exited at once", d)
	}
}

func TestProcessStopKillsTheStubborn(t *testing.T) {
	p := helper(t, "stubborn", `^ready$`)
	if _, err := p.WaitReady(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	err := p.Stop(syscall.SIGTERM, 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("Stop: %v, want a kill after the grace", err)
	}
	if !p.Exited() {
		t.Fatal("still running after Stop")
	}
}

// The lines the service and the emulator say they listen with.
func TestMploginLines(t *testing.T) {
	for _, l := range []string{
		`{"time":"2026-12-06T19:33:41Z","level":"INFO","msg":"serving","addr":"127.0.0.1:8300","version":"dev","apps":2}`,
		`time=2026-12-06T19:33:41Z level=INFO msg=serving addr=127.0.0.1:8300 version=dev apps=2`,
	} {
		if m := testutil.ServingLine().FindStringSubmatch(l); m == nil || m[1] != "127.0.0.1:8300" {
			t.Errorf("ServingLine on %s: %q", l, m)
		}
	}
	l := "mplogin emulator on http://127.0.0.1:9300 (credentials checked: false, open codes: true)"
	if m := testutil.EmulatorLine().FindStringSubmatch(l); m == nil || m[1] != "127.0.0.1:9300" {
		t.Errorf("EmulatorLine: %q", m)
	}
}
