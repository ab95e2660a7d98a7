package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
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

// buildBinary builds mplogin once per test binary run.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

// TestMain removes the binary that the tests built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the real binary; skipped with -short")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mplogin-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "mplogin")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	stderr *testutil.Buffer
	addr   string
}

// serve starts `mplogin serve` on cfgPath and waits until /readyz answers.
func serve(t *testing.T, bin, cfgPath, addr string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, "serve", "--config", cfgPath), stderr: &testutil.Buffer{}, addr: addr}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("service not ready: %v\n%s", err, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a process we do not control
	}
}

func writeConfig(t *testing.T, dir, addr, emuURL string) string {
	t.Helper()
	path := filepath.Join(dir, "mplogin.yaml")
	cfg := fmt.Sprintf(`listen: %s
store: sqlite:%s
master_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
log:
  level: warn
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
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr, em.URL)
	p := serve(t, bin, cfg, addr)

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
						_ = p.cmd.Process.Signal(syscall.SIGKILL)
						close(killed)
					}
				}
			}
		}()
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatalf("only %d logins in 60s\n%s", n.Load(), p.stderr.String())
	}
	wg.Wait()
	_ = p.cmd.Wait()
	if len(tokens) < int(killAt) {
		t.Fatalf("%d tokens", len(tokens))
	}

	serve(t, bin, cfg, addr)
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
	dir := t.TempDir()
	addr := freeAddr(t)
	p := serve(t, bin, writeConfig(t, dir, addr, em.URL), addr)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr.String())
	}
}
