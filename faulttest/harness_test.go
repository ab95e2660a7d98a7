package faulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mplogin/mplogin/internal/testutil"
)

// binary returns the binary under test: mplogin built once for the run,
// or the one MPLOGIN_FAULTTEST_BIN names (another commit, another build
// mode). Without one the test fails: a suite that skipped itself would pass
// with the service unbuildable.
func binary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("MPLOGIN_FAULTTEST_BIN")
	if p == "" {
		return testutil.Build(t, testutil.Mplogin)
	}
	if testing.Short() {
		t.Skip("runs the real binary; skipped with -short")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("cannot run the real binary: %v", err)
	}
	return p
}

// The platform deadline every test configures, and the slack allowed on top
// of it for an answer to reach the test (the children are not built with
// the race detector, but the test process may be).
const (
	platformTimeout = 2 * time.Second
	answerMargin    = time.Second
	answerBound     = platformTimeout + answerMargin
)

// Apps of the test configuration. Each phone app has its own appid, so that
// its platform access token is fetched for the first time inside the test
// that needs it.
const (
	appShop   = "shop"
	appidShop = "wx0123456789abcdef"
	appPhone1 = "phone1"
	appidPh1  = "wx1111111111111111"
	appPhone2 = "phone2"
	appidPh2  = "wx2222222222222222"
	appPhone3 = "phone3"
	appidPh3  = "wx3333333333333333"
	appBaidu  = "shop-baidu"
	appkeyBd  = "demobaiduappkey00000000000000001"
	masterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	appSecret = "s3cret-for-faulttest"
	// Info, so that every request's log line passes the secret scan, and
	// the service says where it listens.
	logLevel   = "info"
	readyBound = 20 * time.Second
)

// writeConfig writes the configuration both children read: the emulator
// takes the apps' credentials from it, the service everything.
func writeConfig(t testing.TB, path, listen, dbPath, endpoint string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\nstore: sqlite:%s\nmaster_key: %s\nlog: {level: %s, format: json}\n", listen, dbPath, masterKey, logLevel)
	fmt.Fprintf(&b, "platform_timeout: %s\nrate_limits: {enabled: false} # all load comes from one address\napps:\n", platformTimeout)
	for _, a := range [][2]string{{appShop, appidShop}, {appPhone1, appidPh1}, {appPhone2, appidPh2}, {appPhone3, appidPh3}} {
		fmt.Fprintf(&b, "  - name: %s\n    platform: wechat\n    appid: %s\n    secret: %s\n    endpoint: %s\n", a[0], a[1], appSecret, endpoint)
	}
	fmt.Fprintf(&b, "  - name: %s\n    platform: baidu\n    app_key: %s\n    app_secret: %s\n    endpoint: %s\n", appBaidu, appkeyBd, appSecret, endpoint)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// logWatch is a child's stderr: it keeps the last tailMax bytes for
// reports, and every line that shows a crash or an error-level log.
type logWatch struct {
	mu      sync.Mutex
	partial []byte
	tail    []byte
	bad     []string
	nbad    int
	lines   int
	notes   []string       // breaker state changes, in order
	causes  map[string]int // causes of 5xx answers, from the request log lines
	// The service's stderr is also scanned for secrets (the emulator, the
	// platform's stand-in, knows them all and is not).
	scanSecrets bool
	leaks       []string
	nleaks      int
	requests    int // request log lines seen
}

const (
	tailMax = 64 << 10
	badMax  = 50
)

// suspicious: a panic anywhere (runtime, net/http's recovered handler
// panics, a handler's recovered panic in a log line), a fatal runtime
// error, a goroutine dump, a data race report, or a log line at ERROR.
var suspicious = regexp.MustCompile(`(?i)panic|fatal error|^goroutine \d+ \[|DATA RACE|"level":"ERROR"|level=ERROR`)

func (w *logWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tail = append(w.tail, p...)
	if len(w.tail) > 2*tailMax {
		w.tail = append(w.tail[:0:0], w.tail[len(w.tail)-tailMax:]...)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > tailMax { // a runaway line: judge what there is
		w.line(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}

// Session keys the harness hands the emulator start with skMarker, so that
// one in a log line or an answer is found in any of its usual encodings.
const skMarker = "faultsesskey" // 12 bytes: its base64 is a clean prefix

// platformSecret matches what only the platform and the service may know:
// the app secret, the master key, a session key of the harness (raw, base64
// or hex), a WeChat access token (128 alphanumerics) or a Baidu one
// ("24.<32 hex>."). secretShaped adds mplogin's own tokens, which belong in
// token answers but never in a log line.
var (
	platformSecret = regexp.MustCompile(strings.Join([]string{
		regexp.QuoteMeta(appSecret), regexp.QuoteMeta(masterKey),
		skMarker, base64.StdEncoding.EncodeToString([]byte(skMarker)), hex.EncodeToString([]byte(skMarker)),
		`[A-Za-z0-9]{100,}`, `24\.[0-9a-f]{32}\.`,
	}, "|"))
	ownToken     = regexp.MustCompile(`mp[ar]_[A-Za-z0-9_-]{16,}`)
	secretShaped = regexp.MustCompile(platformSecret.String() + "|" + ownToken.String())
	requestLine  = regexp.MustCompile(`"msg":"request"`)
)

// breakerLine and causeField pick the breaker's state changes and the cause
// of each 5xx answer out of the service's JSON log.
var (
	breakerLine = regexp.MustCompile(`"msg":"circuit breaker changed state".*`)
	status5xx   = regexp.MustCompile(`"msg":"request".*"status":5\d\d`)
	causeField  = regexp.MustCompile(`"cause":"((?:[^"\\]|\\.)*)"`)
	// Per-request details that would make every cause unique.
	causeNoise = regexp.MustCompile(`rid: [0-9a-f-]+|\d+\.\d+\.\d+\.\d+:\d+`)
)

func (w *logWatch) line(l string) {
	w.lines++
	if w.scanSecrets {
		if requestLine.MatchString(l) {
			w.requests++
		}
		if m := secretShaped.FindString(l); m != "" {
			w.nleaks++
			if len(w.leaks) < badMax {
				w.leaks = append(w.leaks, fmt.Sprintf("%q in %s", m, l))
			}
		}
	}
	if breakerLine.MatchString(l) && len(w.notes) < 1000 {
		w.notes = append(w.notes, l)
	}
	if status5xx.MatchString(l) {
		cause := "(none)"
		if m := causeField.FindStringSubmatch(l); m != nil {
			cause = causeNoise.ReplaceAllString(m[1], "…")
		}
		if w.causes == nil {
			w.causes = map[string]int{}
		}
		w.causes[cause]++
	}
	if suspicious.MatchString(l) {
		w.nbad++
		if len(w.bad) < badMax {
			w.bad = append(w.bad, l)
		}
	}
}

// leaked returns the log lines seen so far that carry something shaped like
// a secret, how many there were, and how many request lines were scanned.
func (w *logWatch) leaked() ([]string, int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	leaks, n := append([]string(nil), w.leaks...), w.nleaks
	if m := secretShaped.Find(w.partial); w.scanSecrets && m != nil {
		leaks, n = append(leaks, fmt.Sprintf("%q in %s", m, w.partial)), n+1
	}
	return leaks, n, w.requests
}

// suspects returns the suspicious lines seen so far and how many there were.
func (w *logWatch) suspects() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 && suspicious.Match(w.partial) {
		return append(append([]string(nil), w.bad...), string(w.partial)), w.nbad + 1
	}
	return append([]string(nil), w.bad...), w.nbad
}

// breakerChanges returns the breaker state changes logged so far.
func (w *logWatch) breakerChanges() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.notes...)
}

// causes5xx counts the 5xx answers logged so far by cause.
func (w *logWatch) causes5xx() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]int, len(w.causes))
	for k, v := range w.causes {
		m[k] = v
	}
	return m
}

func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.tail
	if len(t) > tailMax {
		t = t[len(t)-tailMax:]
	}
	return string(t)
}

// child is a process the test started (see testutil.Process), its stderr
// watched.
type child struct {
	*testutil.Process
	name   string
	stderr *logWatch
}

// startChild starts bin with args and waits up to readyBound for the line
// ready matches, whose submatches it returns.
func startChild(t testing.TB, name, bin string, ready *regexp.Regexp, args ...string) (*child, []string) {
	t.Helper()
	// Only the service's log is scanned for secrets: the emulator is the
	// platform and knows them all.
	c := &child{name: name, stderr: &logWatch{scanSecrets: name == "service"}}
	c.Process = testutil.StartProcess(t, name, bin, args, testutil.ProcessOptions{
		Env:   append(os.Environ(), "GOTRACEBACK=all"),
		Ready: ready, Stderr: c.stderr,
	})
	m, err := c.WaitReady(readyBound)
	if err != nil {
		t.Fatalf("%v\n%s", err, c.stderr)
	}
	return c, m
}

// stop sends SIGTERM and waits up to 15 s for a clean exit, then kills the
// group. It returns an error unless the child exited 0 on SIGTERM.
func (c *child) stop() error { return c.Stop(syscall.SIGTERM, 15*time.Second) }

// rss is the child's resident set size in bytes (VmRSS).
func (c *child) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Pid()))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS in /proc/PID/status")
}

// env is one emulator and one service, and a client for both.
type env struct {
	t       *testing.T
	emu     *child
	svc     *child
	emuURL  string
	svcURL  string
	client  *http.Client
	tr      *http.Transport
	cfgPath string
}

type envOptions struct {
	openCodes bool
	conns     int // idle connections the client keeps per host
}

// startEnv starts the emulator and the service, each on a port of its own
// choosing, and waits until both listen.
func startEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	e := &env{t: t, cfgPath: filepath.Join(dir, "mplogin.yaml")}
	if o.conns <= 0 {
		o.conns = 16
	}
	e.tr = &http.Transport{Proxy: nil, MaxIdleConns: 4 * o.conns, MaxIdleConnsPerHost: 2 * o.conns,
		IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: 20 * time.Second,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	e.client = &http.Client{Transport: e.tr, Timeout: 30 * time.Second}
	t.Cleanup(e.tr.CloseIdleConnections)

	// The emulator checks the apps' credentials; the endpoint it reads is
	// not used by it.
	emuCfg := filepath.Join(dir, "emulator.yaml")
	writeConfig(t, emuCfg, "127.0.0.1:0", filepath.Join(dir, "unused.db"), "http://127.0.0.1:9")
	args := []string{"emulate", "--listen", "127.0.0.1:0", "--config", emuCfg}
	if o.openCodes {
		args = append(args, "--open-codes")
	}
	var m []string
	e.emu, m = startChild(t, "emulator", bin, testutil.EmulatorLine(), args...)
	e.emuURL = "http://" + m[1]

	writeConfig(t, e.cfgPath, "127.0.0.1:0", filepath.Join(dir, "mplogin.db"), e.emuURL)
	e.svc, m = startChild(t, "service", bin, testutil.ServingLine(), "serve", "--config", e.cfgPath)
	e.svcURL = "http://" + m[1]
	return e
}

// reply is one answer of the service.
type reply struct {
	status int
	header http.Header
	body   []byte
	start  time.Time
	dur    time.Duration
	err    error // transport error: no answer at all
	// From an error body:
	code    string
	message string
}

func (r reply) String() string {
	if r.err != nil {
		return "transport error: " + r.err.Error()
	}
	b := r.body
	if len(b) > 300 {
		b = append(b[:300:300], "…"...)
	}
	return fmt.Sprintf("%d %s in %v", r.status, bytes.TrimSpace(b), r.dur.Round(time.Millisecond))
}

// req is one request to the service.
type req struct {
	method, path string
	token        string // Authorization: Bearer token; "-" sends none
	auth         string // a raw Authorization header, instead of token
	body         any    // string or []byte as is; anything else as JSON; nil none
	ctype        string // Content-Type; "" = application/json when there is a body
}

// call sends r to the service and reads the whole answer.
func (e *env) call(ctx context.Context, r req) reply {
	return call(ctx, e.client, e.svcURL, r)
}

func call(ctx context.Context, client *http.Client, base string, r req) reply {
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return reply{err: err}
		}
		body = bytes.NewReader(j)
	}
	hr, err := http.NewRequestWithContext(ctx, r.method, base+r.path, body)
	if err != nil {
		return reply{err: err}
	}
	switch {
	case r.ctype != "":
		hr.Header.Set("Content-Type", r.ctype)
	case body != nil:
		hr.Header.Set("Content-Type", "application/json")
	}
	switch {
	case r.auth != "":
		hr.Header.Set("Authorization", r.auth)
	case r.token != "" && r.token != "-":
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	start := time.Now()
	resp, err := client.Do(hr)
	if err != nil {
		return reply{err: err, start: start, dur: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	rep := reply{status: resp.StatusCode, header: resp.Header, body: b, start: start, dur: time.Since(start), err: err}
	if rep.status >= 400 {
		var eb struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &eb) == nil {
			rep.code, rep.message = eb.Error, eb.Message
		}
	}
	return rep
}

// contractStatus is the errors table of docs/api.md: each error code and
// its status.
var contractStatus = map[string]int{
	"invalid_request":        400,
	"unknown_app":            400,
	"request_too_large":      413,
	"method_not_allowed":     405,
	"unsupported_media_type": 415,
	"invalid_code":           401,
	"invalid_token":          401,
	"invalid_grant":          400,
	"user_blocked":           403,
	"decrypt_failed":         422,
	"rate_limited":           429,
	"platform_error":         502,
	"platform_unavailable":   503,
	"store_unavailable":      503,
	"internal_error":         500,
}

// contractError says what is wrong with an answer by the contract, or nil:
// a 2xx is 200 or 204; an error has the one JSON shape, a code of section 4
// with that code's status, and Retry-After where the contract asks for it.
// A 500 is always wrong here: nothing these tests send may cause one.
func contractError(r reply) error {
	if r.err != nil {
		return r.err
	}
	// An answer's own tokens are where they belong, and a sealed one is
	// long enough to hold a run shaped like a WeChat access token.
	if m := platformSecret.Find(ownToken.ReplaceAll(r.body, []byte("mp_token"))); m != nil {
		return fmt.Errorf("answer carries a secret (%q): %s", m, r)
	}
	for k, vs := range r.header {
		for _, v := range vs {
			if m := secretShaped.FindString(v); m != "" {
				return fmt.Errorf("header %s carries a secret (%q): %s", k, m, r)
			}
		}
	}
	switch {
	case r.status == 200 || r.status == 204:
	case r.status == 500:
		return fmt.Errorf("500 answer: %s", r)
	default:
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			return fmt.Errorf("error answer with Content-Type %q: %s", ct, r)
		}
		var eb map[string]any
		if err := json.Unmarshal(r.body, &eb); err != nil {
			return fmt.Errorf("error body is not JSON: %s", r)
		}
		if len(eb) != 2 || r.code == "" || r.message == "" {
			return fmt.Errorf(`error body is not {"error","message"}: %s`, r)
		}
		want, ok := contractStatus[r.code]
		if !ok {
			return fmt.Errorf("error code %q is not in the contract: %s", r.code, r)
		}
		if want != r.status {
			return fmt.Errorf("error %q with status %d, contract says %d: %s", r.code, r.status, want, r)
		}
		if r.status == 429 || r.status == 503 {
			if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n <= 0 {
				return fmt.Errorf("%d without a valid Retry-After (%q): %s", r.status, r.header.Get("Retry-After"), r)
			}
		}
	}
	if r.header.Get("Cache-Control") != "no-store" {
		return fmt.Errorf("no Cache-Control: no-store: %s", r)
	}
	if r.header.Get("X-Request-Id") == "" {
		return fmt.Errorf("no X-Request-Id: %s", r)
	}
	return nil
}

// emulator control API.

func (e *env) emuCall(method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(j)
	}
	hr, err := http.NewRequest(method, e.emuURL+path, rd)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s %s", method, path, resp.Status, b)
	}
	return b, nil
}

// setFaults replaces every fault rule with rules (a JSON rule or array);
// "" only clears them.
func (e *env) setFaults(t testing.TB, rules string) {
	t.Helper()
	if _, err := e.emuCall(http.MethodDelete, "/_emulator/faults", nil); err != nil {
		t.Fatal(err)
	}
	if rules != "" {
		if _, err := e.emuCall(http.MethodPut, "/_emulator/faults", json.RawMessage(rules)); err != nil {
			t.Fatal(err)
		}
	}
}

// mintCode is wx.login for user in the WeChat app appid.
func (e *env) mintCode(t testing.TB, appid, user string) string {
	t.Helper()
	plat := "wechat"
	if appid == appkeyBd {
		plat = "baidu"
	}
	// The session key is the harness's, so that the scans can find it:
	// 16 bytes for WeChat, 24 for Baidu.
	sk := make([]byte, 16)
	if plat == "baidu" {
		sk = make([]byte, 24)
	}
	copy(sk, skMarker)
	if _, err := rand.Read(sk[len(skMarker):]); err != nil {
		t.Fatal(err)
	}
	b, err := e.emuCall(http.MethodPost, "/_emulator/login", map[string]string{"platform": plat, "appid": appid, "user": user,
		"session_key": base64.StdEncoding.EncodeToString(sk)})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Code string }
	if err := json.Unmarshal(b, &out); err != nil || out.Code == "" {
		t.Fatalf("mint code: %s %v", b, err)
	}
	return out.Code
}

func (e *env) phoneCode(t testing.TB, appid, user string) string {
	t.Helper()
	b, err := e.emuCall(http.MethodPost, "/_emulator/phonecode", map[string]string{"appid": appid, "user": user})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ Code string }
	if err := json.Unmarshal(b, &out); err != nil || out.Code == "" {
		t.Fatalf("phone code: %s %v", b, err)
	}
	return out.Code
}

// userData is what the platform hands the mini program of user (kind
// "userinfo" or "phone"), under the user's current session key.
func (e *env) userData(t testing.TB, appid, user, kind string) map[string]string {
	t.Helper()
	b, err := e.emuCall(http.MethodPost, "/_emulator/userdata",
		map[string]string{"platform": "wechat", "appid": appid, "user": user, "kind": kind})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tokens is a token response.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

// login logs user into app with a freshly minted code and fails the test
// unless it succeeds.
func (e *env) login(t testing.TB, app, appid, user string) tokens {
	t.Helper()
	r := e.call(context.Background(), req{method: "POST", path: "/v1/login",
		body: map[string]string{"app": app, "code": e.mintCode(t, appid, user)}})
	if r.status != 200 {
		t.Fatalf("login %s/%s: %s", app, user, r)
	}
	var tk tokens
	if err := json.Unmarshal(r.body, &tk); err != nil || tk.AccessToken == "" || tk.RefreshToken == "" {
		t.Fatalf("login %s/%s: bad token response %s", app, user, r)
	}
	return tk
}

// metric reads one sample of the service's /metrics: the first line that
// starts with name (a metric name, with labels if given).
func (e *env) metric(name string) (float64, error) {
	resp, err := e.client.Get(e.svcURL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(rest), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

func (e *env) goroutines(t testing.TB) int {
	t.Helper()
	v, err := e.metric("go_goroutines")
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

// settleGoroutines closes the client's idle connections and waits, with a
// bound, for the service's goroutine count to come back to at most limit.
// It returns the last count seen.
func (e *env) settleGoroutines(t testing.TB, limit int) (int, bool) {
	t.Helper()
	start := time.Now()
	for {
		e.tr.CloseIdleConnections()
		n := e.goroutines(t)
		if n <= limit {
			return n, true
		}
		if overdue(start, 10*time.Second) {
			return n, false
		}
		time.Sleep(50 * time.Millisecond) // polling a child process, bounded above
	}
}

// checkHealthy: the service runs, /healthz and /readyz answer 200, and
// neither child logged a panic or an error-level line.
func (e *env) checkHealthy(t testing.TB) {
	t.Helper()
	for _, c := range []*child{e.svc, e.emu} {
		if c.Exited() {
			t.Fatalf("%s exited: %v\n%s", c.name, c.Err(), c.stderr)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := e.call(context.Background(), req{method: "GET", path: p}); r.status != 200 {
			t.Errorf("GET %s: %s", p, r)
		}
	}
	e.checkLogs(t)
}

// checkLogs fails the test on a suspicious line in either child's stderr,
// and on a line of the service's that carries a secret.
func (e *env) checkLogs(t testing.TB) {
	t.Helper()
	for _, c := range []*child{e.svc, e.emu} {
		if bad, n := c.stderr.suspects(); n > 0 {
			t.Errorf("%s logged %d panic or error lines, first ones:\n%s", c.name, n, strings.Join(bad, "\n"))
		}
	}
	leaks, n, requests := e.svc.stderr.leaked()
	if n > 0 {
		t.Errorf("the service logged %d lines with a secret in them, first ones:\n%s", n, strings.Join(leaks, "\n"))
	}
	if requests == 0 {
		t.Errorf("the service logged no request line: the secret scan saw nothing")
	}
}

// stopAll stops both children with SIGTERM and expects a clean exit.
func (e *env) stopAll(t testing.TB) {
	t.Helper()
	if err := e.svc.stop(); err != nil {
		t.Errorf("%v\n%s", err, e.svc.stderr)
	}
	if err := e.emu.stop(); err != nil {
		t.Errorf("%v\n%s", err, e.emu.stderr)
	}
	e.checkLogs(t)
}

// The log scan catches what the suite relies on it to catch.
func TestLogWatchFlags(t *testing.T) {
	w := &logWatch{}
	fmt.Fprint(w, `{"time":"…","level":"INFO","msg":"request","status":200}`+"\n")
	fmt.Fprint(w, `{"time":"…","level":"WARN","msg":"request","status":503,"error":"platform_unavailable"}`+"\n")
	if _, n := w.suspects(); n != 0 {
		t.Fatalf("%d suspects in clean lines", n)
	}
	for _, l := range []string{
		`{"level":"ERROR","msg":"boom"}`,
		`level=ERROR msg=boom`,
		`panic: runtime error: index out of range [3] with length 3`,
		`goroutine 17 [running]:`,
		`http: panic serving 127.0.0.1:5555: oops`,
		`fatal error: concurrent map writes`,
		`WARNING: DATA RACE`,
	} {
		fmt.Fprint(w, l+"\n")
	}
	fmt.Fprint(w, "panic: no newline yet")
	if _, n := w.suspects(); n != 8 {
		t.Fatalf("%d suspects, want 8", n)
	}
}

// The secret scan catches a secret in any form the service could leak it,
// and passes the service's ordinary lines.
func TestSecretScan(t *testing.T) {
	w := &logWatch{scanSecrets: true}
	fmt.Fprint(w, `{"time":"2026-11-21T04:45:04Z","level":"INFO","msg":"request","rid":"0b6e3c9e-6f1a-4c1e-9d6a-3f0e2b1c4d5e","route":"POST /v1/login","status":200,"ms":3.1,"app":"shop"}`+"\n")
	fmt.Fprint(w, `{"level":"WARN","msg":"request","status":503,"error":"platform_unavailable","cause":"wechat: jscode2session: errcode -1"}`+"\n")
	if leaks, n, requests := w.leaked(); n != 0 || requests != 2 {
		t.Fatalf("clean lines: %d leaks %v, %d request lines", n, leaks, requests)
	}
	sk := append([]byte(skMarker), 1, 2, 3, 4)
	for _, l := range []string{
		"secret=" + appSecret,
		"master " + masterKey,
		"key " + base64.StdEncoding.EncodeToString(sk),
		"key " + hex.EncodeToString(sk),
		"key " + string(sk),
		"wechat token " + strings.Repeat("aB3", 43),
		"baidu token 24.0123456789abcdef0123456789abcdef.2592000.1700000000.abc",
		"access mpa_" + strings.Repeat("x", 43),
		"refresh mpr_" + strings.Repeat("-", 20),
	} {
		fmt.Fprint(w, l+"\n")
	}
	if leaks, n, _ := w.leaked(); n != 9 {
		t.Fatalf("%d leaks, want 9: %v", n, leaks)
	}
	// Answers: mplogin's own tokens are expected, platform secrets are not.
	ok := reply{status: 200, header: http.Header{"Cache-Control": {"no-store"}, "X-Request-Id": {"r"}},
		body: []byte(`{"access_token":"mpa_` + strings.Repeat("x", 43) + `"}`)}
	if err := contractError(ok); err != nil {
		t.Fatal(err)
	}
	ok.body = []byte(`{"session_key":"` + base64.StdEncoding.EncodeToString(sk) + `"}`)
	if err := contractError(ok); err == nil {
		t.Fatal("an answer with a session key passed")
	}
}
