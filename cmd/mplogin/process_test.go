package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
)

// binary is mplogin, built once for the tests that run it.
func binary(t *testing.T) string {
	t.Helper()
	return testutil.Build(t, testutil.Mplogin)
}

// serve starts `mplogin serve` on cfgPath, which must log at level info,
// and returns it with its address once it listens.
func serve(t *testing.T, bin, cfgPath string) (*testutil.Process, string) {
	t.Helper()
	p := testutil.StartProcess(t, "mplogin serve", bin, []string{"serve", "--config", cfgPath},
		testutil.ProcessOptions{Ready: testutil.ServingLine()})
	m, err := p.WaitReady(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return p, m[1]
}

func writeConfig(t *testing.T, dir, addr, emuURL string) string {
	t.Helper()
	path := filepath.Join(dir, "mplogin.yaml")
	cfg := fmt.Sprintf(`listen: %s
store: sqlite:%s
master_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
log:
  level: info # the line that says it listens
rate_limits: {enabled: false} # the login load comes from one address
apps:
  - name: shop
    platform: wechat
    appid: wx0123456789abcdef
    secret: s3cret-for-tests
    endpoint: %s
`, addr, filepath.Join(dir, "mplogin.db"), emuURL)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kill -9 of the real binary under login load loses no session whose token
// was returned: every token a client received works after a restart.
func TestKill9LosesNoAcknowledgedSession(t *testing.T) {
	bin := binary(t)
	em := httptest.NewServer(emulator.New(emulator.Config{OpenCodes: true}))
	defer em.Close()
	dir := t.TempDir()
	p, addr := serve(t, bin, writeConfig(t, dir, "127.0.0.1:0", em.URL))

	var (
		mu     sync.Mutex
		tokens []string
		n      atomic.Int64
		wg     sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	killAt := int64(400)
	killed := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"app":"shop","code":"w%du%d.%d"}`, w, i%50, i)
				resp, err := client.Post("http://"+addr+"/v1/login", "application/json", strings.NewReader(body))
				if err != nil {
					select {
					case <-killed:
						return // the process is gone
					default:
						continue
					}
				}
				var out struct {
					AccessToken string `json:"access_token"`
				}
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 && out.AccessToken != "" {
					mu.Lock()
					tokens = append(tokens, out.AccessToken)
					mu.Unlock()
					if n.Add(1) == killAt {
						_ = p.Signal(syscall.SIGKILL)
						close(killed)
					}
				}
			}
		}()
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d logins in 60s\n%s", n.Load(), p.Stderr())
	}
	wg.Wait()
	<-p.Done()
	if len(tokens) < int(killAt) {
		t.Fatalf("%d tokens", len(tokens))
	}

	// Again on the same address, where the clients' tokens were issued.
	serve(t, bin, writeConfig(t, dir, addr, em.URL))
	lost := 0
	for _, tok := range tokens {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/session", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged sessions lost after kill -9", lost, len(tokens))
	}
	t.Logf("%d acknowledged sessions, all present after kill -9 and restart", len(tokens))
}

// SIGTERM shuts down gracefully with exit status 0.
func TestServeGracefulShutdown(t *testing.T) {
	bin := binary(t)
	em := httptest.NewServer(emulator.New(emulator.Config{OpenCodes: true}))
	defer em.Close()
	p, _ := serve(t, bin, writeConfig(t, t.TempDir(), "127.0.0.1:0", em.URL))
	if err := p.Stop(syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.Stderr())
	}
}
