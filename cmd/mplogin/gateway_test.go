package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
)

// findNginx is nginx's path; without it the test skips, or fails where
// CI=true, since CI installs it (.ci/run).
func findNginx(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "nginx is not installed (apt-get install nginx-light): the gateway test runs nginx's auth_request against mplogin"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// upstream is the business API behind the gateway: it records what
// reaches it.
type upstream struct {
	mu   sync.Mutex
	seen []http.Header
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Header.Clone())
	u.mu.Unlock()
	_, _ = io.WriteString(w, "orders of "+r.Header.Get("X-User-Id"))
}

func (u *upstream) requests() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen...)
}

const gatewayClientSecret = "gateway-test-client-secret-0c41"

// freeAddr is a loopback address with a port free a moment ago: nginx,
// unlike mplogin, cannot listen on port 0 and say which port it got.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNginx runs nginx in the foreground, as the current user, with every
// file it writes under dir, in front of upstream with auth_request to
// mplogin at authz; it returns nginx's address.
func startNginx(t *testing.T, bin, dir, authz, upstream string) string {
	t.Helper()
	addr := freeAddr(t)
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s;
		location /api/ {
			auth_request /_authz;
			auth_request_set $mp_user $upstream_http_x_user_id;
			auth_request_set $mp_app $upstream_http_x_mplogin_app;
			proxy_set_header X-User-Id $mp_user;
			proxy_set_header X-Mplogin-App $mp_app;
			proxy_pass http://%[4]s;
		}
		location = /_authz {
			internal;
			proxy_pass http://%[3]s/v1/authz;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_set_header Authorization $http_authorization;
			proxy_set_header X-Original-URI $request_uri;
		}
	}
}
`, dir, addr, authz, upstream)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.Buffer{}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"),
		"-g", "daemon off; master_process off;")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s\n%s", stderr.String(), log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a process we do not control
	}
}

// TestNginxAuthRequest puts the real binary behind a real nginx, with
// auth_request on /v1/authz, in front of a business API: only requests
// with a live access token reach the API, carrying the user id mplogin
// gave, never the one the client sent.
func TestNginxAuthRequest(t *testing.T) {
	nginx := findNginx(t)
	bin := binary(t)
	em := httptest.NewServer(emulator.New(emulator.Config{OpenCodes: true}))
	defer em.Close()
	api := &upstream{}
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()

	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, "127.0.0.1:0", em.URL)
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = fmt.Fprintf(f, "clients:\n  - id: orders\n    secret: %s\n", gatewayClientSecret)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	svc, addr := serve(t, bin, cfgPath)
	ngDir := filepath.Join(dir, "nginx")
	if err := os.Mkdir(ngDir, 0o700); err != nil {
		t.Fatal(err)
	}
	gw := "http://" + startNginx(t, nginx, ngDir, addr, strings.TrimPrefix(apiSrv.URL, "http://"))
	mp := "http://" + addr
	client := &http.Client{Timeout: 10 * time.Second}

	type tokens struct {
		Access  string `json:"access_token"`
		Refresh string `json:"refresh_token"`
		User    struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	login := func(code string) tokens {
		t.Helper()
		resp, err := client.Post(mp+"/v1/login", "application/json", strings.NewReader(`{"app":"shop","code":"`+code+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var tk tokens
		if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil || resp.StatusCode != 200 || tk.Access == "" || tk.User.ID == "" {
			t.Fatalf("login: %d %v", resp.StatusCode, err)
		}
		return tk
	}
	// get asks the gateway for an API path with the given headers.
	get := func(path string, h map[string]string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("GET", gw+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	post := func(path, ct, body string, h map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", mp+path, strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	denied := func(what string, h map[string]string) {
		t.Helper()
		before := len(api.requests())
		status, body, hdr := get("/api/orders", h)
		if status != 401 {
			t.Fatalf("%s: %d %s, want 401", what, status, body)
		}
		if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", what, hdr.Get("WWW-Authenticate"))
		}
		if n := len(api.requests()); n != before {
			t.Fatalf("%s reached the API", what)
		}
	}

	alice, bob, carol, dan := login("alice.1"), login("bob.1"), login("carol.1"), login("dan.1")

	// A live token reaches the API with its user's id; a forged id is
	// replaced, on each of several requests.
	for i, tk := range []tokens{alice, bob, alice} {
		status, body, _ := get(fmt.Sprintf("/api/orders?n=%d", i), map[string]string{
			"Authorization": "Bearer " + tk.Access, "X-User-Id": "forged-admin", "X-Mplogin-App": "forged"})
		if status != 200 || body != "orders of "+tk.User.ID {
			t.Fatalf("request %d: %d %q, want the API's answer for %s", i, status, body, tk.User.ID)
		}
		seen := api.requests()
		last := seen[len(seen)-1]
		if got := last.Values("X-User-Id"); len(got) != 1 || got[0] != tk.User.ID {
			t.Fatalf("request %d: the API got X-User-Id %q, want only %s", i, got, tk.User.ID)
		}
		if got := last.Values("X-Mplogin-App"); len(got) != 1 || got[0] != "shop" {
			t.Fatalf("request %d: the API got X-Mplogin-App %q", i, got)
		}
	}

	denied("no token", nil)
	denied("no token, a forged user id", map[string]string{"X-User-Id": alice.User.ID})
	denied("a garbage token", map[string]string{"Authorization": "Bearer garbage"})
	denied("an unknown token", map[string]string{"Authorization": "Bearer mpa_" + strings.Repeat("A", 43)})
	denied("a refresh token", map[string]string{"Authorization": "Bearer " + alice.Refresh})

	// Revoked by its holder through /v1/revoke, with the refresh token.
	if s := post("/v1/revoke", "application/x-www-form-urlencoded", url.Values{"token": {bob.Refresh}}.Encode(), nil); s != 200 {
		t.Fatalf("revoke: %d", s)
	}
	denied("a token revoked by its holder", map[string]string{"Authorization": "Bearer " + bob.Access})
	// Revoked by a business client, with the access token.
	basicAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("orders:"+gatewayClientSecret))
	if s := post("/v1/revoke", "application/x-www-form-urlencoded", url.Values{"token": {dan.Access}}.Encode(),
		map[string]string{"Authorization": basicAuth}); s != 200 {
		t.Fatalf("revoke by a client: %d", s)
	}
	denied("a token revoked by a client", map[string]string{"Authorization": "Bearer " + dan.Access, "X-User-Id": dan.User.ID})
	// Logged out.
	if s := post("/v1/logout", "", "", map[string]string{"Authorization": "Bearer " + carol.Access}); s != 204 {
		t.Fatalf("logout: %d", s)
	}
	denied("a logged-out token", map[string]string{"Authorization": "Bearer " + carol.Access})

	// Alice's session was not touched by any of it.
	if status, body, _ := get("/api/orders", map[string]string{"Authorization": "Bearer " + alice.Access}); status != 200 ||
		body != "orders of "+alice.User.ID {
		t.Fatalf("alice after the others' revocations: %d %q", status, body)
	}
	if n := len(api.requests()); n != 4 {
		t.Fatalf("the API saw %d requests, want the 4 with live tokens", n)
	}
	// No token, and no client secret, in the service's log.
	for _, s := range []string{alice.Access, bob.Refresh, dan.Access, gatewayClientSecret} {
		if strings.Contains(svc.Stderr()+svc.Stdout(), s) {
			t.Fatal("the service's log carries a token or a client secret")
		}
	}
}
