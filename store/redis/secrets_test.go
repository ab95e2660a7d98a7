package redis_test

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/store/redis"
)

// TestOpenErrorsShowNoURLSecret: an error that quotes the URL shows none of
// its query values (any of them may be a secret: sentinel_password, a
// mistyped password parameter) nor the password of its user information,
// raw or decoded. None of these need a Redis.
func TestOpenErrorsShowNoURLSecret(t *testing.T) {
	const secret = "Zq7-s3cr3t/+?"
	raw := url.QueryEscape(secret)
	for _, u := range []string{
		"redis://127.0.0.1:1/0?master_name=m&sentinel_password=" + raw,
		"redis://127.0.0.1:1/0?x=" + raw,
		"redis://127.0.0.1:1/0?dial_timeout=" + raw,
		"redis://127.0.0.1:1/0?master_name=m&password=" + raw + "&sentinel_password=" + raw,
		"redis://127.0.0.1:1/0?master_name=m&password=" + raw,
		"redis://default:" + url.PathEscape(secret) + "@127.0.0.1:1/0",
		"redis://default:" + url.PathEscape(secret) + "@127.0.0.1:1/0?master_name=m&client_name=" + raw,
		"rediss://127.0.0.1:1/0?" + raw,
	} {
		_, err := redis.Open(t.Context(), u, redis.Options{DialTimeout: 500 * time.Millisecond})
		if err == nil {
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		msg := err.Error()
		t.Logf("Open(…) = %s", msg)
		for _, s := range []string{secret, raw, url.PathEscape(secret), "Zq7"} {
			if strings.Contains(msg, s) {
				t.Errorf("the error shows %q: %s", s, msg)
			}
		}
		if !strings.Contains(msg, "127.0.0.1:1") {
			t.Errorf("the error does not say which Redis: %s", msg)
		}
	}
}

// goredisChildEnv makes the test binary a process that opens a store, with
// a JSON logger on stdout, on the URL it holds (TestGoRedisLogsThroughSlog).
const goredisChildEnv = "MPLOGIN_REDIS_LOG_CHILD"

// TestGoRedisLogsThroughSlog: what go-redis logs by itself (here: its pool
// failing to dial) goes through the store's logger, at warn, without the
// URL's password; nothing reaches stderr, where it would break the JSON
// log. go-redis's logger is process-wide, so this runs in a process of its
// own.
func TestGoRedisLogsThroughSlog(t *testing.T) {
	const password = "pw-Lq83mVx"
	if u := os.Getenv(goredisChildEnv); u != "" {
		log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
		if _, err := redis.Open(t.Context(), u, redis.Options{Logger: log, DialTimeout: time.Second}); err == nil {
			t.Fatal("Open of a closed port succeeded")
		}
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoRedisLogsThroughSlog$", "-test.count=1")
	cmd.Env = append(os.Environ(), goredisChildEnv+"=redis://default:"+password+"@"+addr+"/0")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("go-redis wrote to stderr:\n%s", stderr.String())
	}
	var found bool
	lines := bufio.NewScanner(strings.NewReader(stdout.String()))
	for lines.Scan() {
		line := lines.Text()
		if strings.Contains(line, password) {
			t.Errorf("a log line shows the password: %s", line)
		}
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if strings.Contains(line, "failed to dial") {
			found = true
			t.Logf("logged: %s", line)
			if rec["level"] != "WARN" {
				t.Errorf("go-redis's line logged at %v, want WARN: %s", rec["level"], line)
			}
		}
	}
	if !found {
		t.Errorf("go-redis's dial failure is not in the store's log:\n%s", stdout.String())
	}
}
