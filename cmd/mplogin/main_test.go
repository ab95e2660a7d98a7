package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/internal/testutil"
)

// start runs the program in the background and returns its stdout as a
// line reader, its stderr, and a stop function that returns the exit code.
func start(t *testing.T, args ...string) (*bufio.Reader, *testutil.Buffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &testutil.Buffer{}
	done := make(chan int, 1)
	go func() {
		code := run(ctx, args, pw, stderr, func(string) (string, bool) { return "", false })
		pw.Close()
		done <- code
	}()
	stopped := false
	var code int
	stop := func() int {
		if !stopped {
			cancel()
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			code = <-done
			stopped = true
		}
		return code
	}
	t.Cleanup(func() { stop() })
	return bufio.NewReader(pr), stderr, stop
}

// readUntil collects stdout lines until one contains marker.
func readUntil(t *testing.T, r *bufio.Reader, marker string) string {
	t.Helper()
	var out strings.Builder
	for {
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if strings.Contains(line, marker) {
			return out.String()
		}
		if err != nil {
			t.Fatalf("no %q in output: %v\n%s", marker, err, out.String())
		}
	}
}

// The walkthrough the demo prints is run as printed, and every step works.
func TestDemoWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed: the printed walkthrough uses it")
	}
	data := t.TempDir()
	alicePhone := emulator.New(emulator.Config{}).PhoneNumber("alice")
	for round, wantCreated := range []string{`"created":true`, `"created":false`} {
		out, stderr, stop := start(t, "demo", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0", "--data", data)
		text := readUntil(t, out, walkEnd)
		if (round == 0) != strings.Contains(text, "Generated a master key") {
			t.Fatalf("round %d: master key message wrong:\n%s", round, text)
		}
		script := text[strings.Index(text, walkBegin):]
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", script)
		res, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("walkthrough failed: %v\n%s\nstderr:\n%s", err, res, stderr.String())
		}
		got := string(res)
		phone := `"phone_number":"` + alicePhone + `"`
		if n := strings.Count(got, phone); n != 2 {
			t.Fatalf("round %d: %s appears %d times, want 2 (by code and by payload):\n%s", round, phone, n, got)
		}
		for _, want := range []string{`"token_type":"Bearer"`, wantCreated, `"active":true`, `"app":"demo-wechat"`,
			`"refresh_expires_in":`, `"session_key_valid":true`, `"data":{`, `"nickName":"alice"`,
			"logout: HTTP 204", `"error":"invalid_token"`, `"openid":"anonymous:`, `"anonymous":true`} {
			if !strings.Contains(got, want) {
				t.Fatalf("round %d: %q missing from walkthrough output:\n%s", round, want, got)
			}
		}
		// WeChat's login and refresh, Douyin's anonymous login and its
		// upgrade, QQ's, Kuaishou's and Alipay's logins.
		if n := strings.Count(got, `"token_type":"Bearer"`); n != 7 {
			t.Fatalf("round %d: %d token responses, want 7:\n%s", round, n, got)
		}
		if carol := `"phone_number":"` + emulator.New(emulator.Config{}).PhoneNumber("carol") + `"`; !strings.Contains(got, carol) {
			t.Fatalf("round %d: no %s (Alipay's phone number):\n%s", round, carol, got)
		}
		// The first run upgrades bob's anonymous user; the second finds
		// it upgraded already.
		if strings.Contains(got, `"previous_user_id":"`) != (round == 0) {
			t.Fatalf("round %d: previous_user_id wrong:\n%s", round, got)
		}
		if code := stop(); code != 0 {
			t.Fatalf("demo exited %d; stderr:\n%s", code, stderr.String())
		}
		for _, l := range strings.Split(stderr.String(), "\n") {
			for _, s := range []string{"mpa_", "mpr_", demoWeChatSecret, demoDouyinSecret, alicePhone, "PRIVATE KEY"} {
				if strings.Contains(l, s) {
					t.Fatalf("log line carries a secret: %s", l)
				}
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(data, "master.key")); len(b) == 0 {
		t.Fatal("no master key file")
	}
	if fi, err := os.Stat(filepath.Join(data, "douyin.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the demo Douyin key: %v, %v; want a file only its owner reads", fi, err)
	}
}

// The demo runs with a master key and a data directory that others may
// read or write, and says so in its log; with the ones it makes itself
// (the directory 0700, the key 0600), it says nothing of the kind, and its
// database is its owner's alone.
func TestDemoWarnsOfOpenFiles(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "fresh")
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(open, "master.key")
	if err := os.WriteFile(key, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod, not the modes above: the umask must not decide the test.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{fresh, open} {
		out, stderr, stop := start(t, "demo", "--listen", "127.0.0.1:0", "--emulator-listen", "127.0.0.1:0", "--data", data)
		readUntil(t, out, walkEnd)
		if code := stop(); code != 0 {
			t.Fatalf("demo exited %d; stderr:\n%s", code, stderr.String())
		}
		var warned []string
		for line := range strings.Lines(stderr.String()) {
			if strings.Contains(line, "level=WARN") {
				warned = append(warned, line)
			}
		}
		if data == fresh {
			if len(warned) > 0 {
				t.Errorf("files the demo made itself drew warnings:\n%s", strings.Join(warned, ""))
			}
			for _, f := range []string{"master.key", "mplogin.db"} {
				fi, err := os.Stat(filepath.Join(data, f))
				if err != nil || fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s: %v, %v; want no access for group and others", f, fi.Mode(), err)
				}
			}
			fi, err := os.Stat(data)
			if err != nil || fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("data directory: %v, %v; want no access for group and others", fi.Mode(), err)
			}
			continue
		}
		for _, name := range []string{key, open} {
			n := 0
			for _, w := range warned {
				if strings.Contains(w, name+" ") || strings.Contains(w, name+"\n") || strings.Contains(w, name+`"`) {
					n++
				}
			}
			if n == 0 {
				t.Errorf("no warning names %s:\n%s", name, stderr.String())
			}
		}
	}
}

var emuAddr = regexp.MustCompile(`http://127\.0\.0\.1:\d+`)

// `mplogin emulate --config` answers like the platforms for a good
// exchange, a reused code, an invalid code and a bad secret.
func TestEmulateCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mplogin.yaml")
	cfgText := `store: sqlite:` + filepath.Join(dir, "x.db") + `
master_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
apps:
  - name: w
    platform: wechat
    appid: wx0123456789abcdef
    secret: wsecret
  - name: b
    platform: baidu
    app_key: y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7
    app_secret: bsecret
`
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, stop := start(t, "emulate", "--listen", "127.0.0.1:0", "--config", cfgPath)
	base := emuAddr.FindString(readUntil(t, out, "emulator on"))
	mint := func(platform, appid string) string {
		resp, err := http.Post(base+"/_emulator/login", "application/json",
			strings.NewReader(fmt.Sprintf(`{"platform":%q,"appid":%q,"user":"alice"}`, platform, appid)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v struct{ Code string }
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Code == "" {
			t.Fatalf("mint: %v %d", err, resp.StatusCode)
		}
		return v.Code
	}
	get := func(u string) string {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post := func(u string, form url.Values) string {
		resp, err := http.PostForm(u, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	wx := func(secret, code string) string {
		return get(base + "/sns/jscode2session?" + url.Values{"appid": {"wx0123456789abcdef"}, "secret": {secret},
			"js_code": {code}, "grant_type": {"authorization_code"}}.Encode())
	}
	code := mint("wechat", "wx0123456789abcdef")
	expect := func(name, got, want string) {
		t.Helper()
		if !strings.Contains(got, want) {
			t.Fatalf("%s: %s (want %s)", name, got, want)
		}
	}
	expect("good", wx("wsecret", code), `"session_key":"`)
	expect("reused", wx("wsecret", code), `"errcode":40163`)
	expect("invalid", wx("wsecret", "nonsense"), `"errcode":40029`)
	expect("bad secret", wx("wrong", mint("wechat", "wx0123456789abcdef")), `"errcode":40125`)

	bd := func(sk, code string) string {
		return post(base+"/oauth/jscode2sessionkey", url.Values{"code": {code}, "client_id": {"y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7"}, "sk": {sk}})
	}
	code = mint("baidu", "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7")
	expect("baidu good", bd("bsecret", code), `"session_key":"`)
	expect("baidu reused", bd("bsecret", code), `"error":"invalid_grant"`)
	expect("baidu invalid", bd("bsecret", "nonsense"), `"error":"invalid_grant"`)
	expect("baidu bad secret", bd("wrong", mint("baidu", "y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7")), `"error":"invalid_client"`)
	if c := stop(); c != 0 {
		t.Fatalf("exit %d", c)
	}
}

func TestCommandLineErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("store: sqlite:x.db\nmaster_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nlisten_typo: x\napps: []\n"), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"serve without config", []string{"serve"}, "--config is required"},
		{"unknown flag", []string{"serve", "--nope"}, "flag provided but not defined"},
		{"unknown config key", []string{"serve", "--config", bad}, "listen_typo"},
		{"missing file", []string{"serve", "--config", filepath.Join(dir, "none.yaml")}, "none.yaml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, tc.args, &stdout, &stderr, func(string) (string, bool) { return "", false })
			if code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q", code, stderr.String())
			}
		})
	}
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &stdout, io.Discard, nil); code != 0 || !strings.HasPrefix(stdout.String(), "mplogin ") {
		t.Fatalf("version: %d %q", code, stdout.String())
	}
}

// TestSetProcs checks the Go processors of a service: twice the default on
// SQLite, however often it is called, the default on PostgreSQL, and
// GOMAXPROCS's when that is set.
func TestSetProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	unset := func(string) (string, bool) { return "", false }
	for _, c := range []struct {
		dsn  string
		want int
	}{
		{"sqlite:./mplogin.db", 2 * def},
		{"sqlite:./mplogin.db", 2 * def},
		{"postgres://root@127.0.0.1:5432/test", def},
		{"sqlite:./mplogin.db", 2 * def},
	} {
		if got := setProcs(c.dsn, unset); got != c.want || runtime.GOMAXPROCS(0) != c.want {
			t.Errorf("setProcs(%s) = %d, GOMAXPROCS %d; want %d", c.dsn, got, runtime.GOMAXPROCS(0), c.want)
		}
	}
	runtime.GOMAXPROCS(3)
	set := func(k string) (string, bool) {
		if k == "GOMAXPROCS" {
			return "3", true
		}
		return "", false
	}
	if got := setProcs("sqlite:./mplogin.db", set); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("setProcs with GOMAXPROCS=3 = %d, GOMAXPROCS %d; want 3", got, runtime.GOMAXPROCS(0))
	}
}
