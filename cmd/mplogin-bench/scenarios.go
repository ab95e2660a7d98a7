package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The one app of the service under test, served by the emulator.
const (
	benchApp   = "bench-wechat"
	benchAppID = "wxbench000000001"
	// benchJWTApp is the same app with JWT access tokens, for the
	// login-jwt scenario.
	benchJWTApp = "bench-wechat-jwt"
)

// Scenario names, in the order they run.
const (
	scBare           = "bare"
	scSession        = "session"
	scAuthz          = "authz"
	scLoginNew       = "login-new"
	scLoginJWT       = "login-jwt"
	scLoginReturning = "login-returning"
)

var allScenarios = []string{scBare, scSession, scAuthz, scLoginNew, scLoginJWT, scLoginReturning}

// What a good answer contains, beyond a 2xx status.
var (
	wantActive   = []byte(`"active":true`)
	wantCreated  = []byte(`"created":true`)
	wantReturned = []byte(`"created":false`)
)

// service is mplogin serve and its emulator, running as children.
type service struct {
	emu, serve *child
	base       string // http://host:port of the service
	db         string // the SQLite database file
	idleRSS    int64
}

// serviceSpec says how to start the service.
type serviceSpec struct {
	dir      string // scratch directory: config, database, logs
	bin      string // the mplogin binary
	logLevel string
	// profile and trace, when set, run the service in this harness's own
	// binary (serve-profiled) and write a CPU profile or an execution
	// trace of it there.
	profile, trace string
	// store and sessions are the config's keys; store "" is SQLite in
	// data, or in dir without data.
	store, sessions string
	// data, when set, keeps the SQLite file and the master key across
	// runs, so that a populated store is reused.
	data string
	// key is the master key (masterKey).
	key []byte
	// populated: the store holds populated users (populate.go).
	populated bool
}

// storeDSN is the service's store.
func (sp serviceSpec) storeDSN() string {
	if sp.store != "" {
		return sp.store
	}
	return "sqlite:" + sp.sqliteFile()
}

// sqliteFile is the SQLite database of the default store.
func (sp serviceSpec) sqliteFile() string {
	if sp.data != "" {
		return filepath.Join(sp.data, "mplogin.db")
	}
	return filepath.Join(sp.dir, "mplogin.db")
}

// masterKey is a fresh key, or with sp.data the one kept there (made on
// the first run): what a kept store holds sealed (signing keys, cached
// platform tokens) must open in later runs.
func (sp serviceSpec) masterKey() ([]byte, error) {
	if sp.data == "" {
		return newMasterKey()
	}
	path := filepath.Join(sp.data, "master.key")
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("%s: want the base64 of 32 bytes", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key, err := newMasterKey()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(sp.data, 0o700); err != nil {
		return nil, err
	}
	return key, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}

func newMasterKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return key, nil
}

// startService starts the emulator and the service, waits until the
// service is ready, and reads its idle RSS. On error, nothing is left
// running.
func startService(ctx context.Context, sp serviceSpec) (_ *service, err error) {
	s := &service{}
	defer func() {
		if err != nil {
			_ = s.stop()
		}
	}()
	s.emu, err = startChild(ctx, "emulator", filepath.Join(sp.dir, "emulator.log"), sp.bin,
		"emulate", "--listen", "127.0.0.1:0", "--open-codes")
	if err != nil {
		return nil, err
	}
	line, err := s.emu.waitLine(ctx, 30*time.Second)
	if err != nil {
		return nil, err
	}
	// "mplogin emulator on http://127.0.0.1:PORT (…)"
	_, after, ok := strings.Cut(line, " on ")
	emuURL, _, _ := strings.Cut(after, " ")
	if !ok || !strings.HasPrefix(emuURL, "http://127.0.0.1:") {
		return nil, fmt.Errorf("emulator: unexpected first line %q", line)
	}

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(sp.dir, "mplogin.yaml")
	if sp.store == "" {
		s.db = sp.sqliteFile()
	}
	if err := writeConfig(cfgPath, addr, sp.storeDSN(), sp.sessions, emuURL, sp.logLevel, sp.key, sp.populated); err != nil {
		return nil, err
	}
	bin, args := sp.bin, []string{"serve", "--config", cfgPath}
	if sp.profile != "" || sp.trace != "" {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		bin, args = self, []string{cmdServeProfiled, "--config", cfgPath, "--cpuprofile", sp.profile, "--trace", sp.trace}
	}
	s.serve, err = startChild(ctx, "mplogin serve", filepath.Join(sp.dir, "serve.log"), bin, args...)
	if err != nil {
		return nil, err
	}
	s.base = "http://" + addr
	if err := waitReady(ctx, s.serve, s.base+"/readyz", 30*time.Second); err != nil {
		return nil, err
	}
	if s.idleRSS, err = rssBytes(s.serve.pid()); err != nil {
		return nil, err
	}
	return s, nil
}

// stop stops the service, then the emulator; both must exit cleanly.
func (s *service) stop() error {
	var errs []error
	if s.serve != nil {
		errs = append(errs, s.serve.stop(15*time.Second))
	}
	if s.emu != nil {
		errs = append(errs, s.emu.stop(10*time.Second))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// swept reads what the janitor has deleted so far from the service's
// metrics.
func (s *service) swept(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "mplogin_swept_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("metrics: mplogin_swept_total %q: %w", v, err)
			}
			return int64(f), nil
		}
	}
	return 0, fmt.Errorf("metrics: no mplogin_swept_total in %d bytes (status %d)", len(body), resp.StatusCode)
}

func (s *service) rss() int64 {
	n, err := rssBytes(s.serve.pid())
	if err != nil {
		return 0
	}
	return n
}

// walSize is the size of the database's write-ahead log (0 if none).
func (s *service) walSize() int64 {
	if s.db == "" {
		return 0
	}
	st, err := os.Stat(s.db + "-wal")
	if err != nil {
		return 0
	}
	return st.Size()
}

// pids names the processes whose CPU time a scenario reports.
func (s *service) pids() map[string]int {
	return map[string]int{"service": s.serve.pid(), "emulator": s.emu.pid(), "harness": os.Getpid()}
}

// writeConfig writes the service's configuration.
func writeConfig(path, listen, store, sessions, emulator, level string, key []byte, populated bool) error {
	policy := ""
	if populated {
		// As long as the populated users' access tokens, so that the
		// service takes them in every later run.
		policy = fmt.Sprintf("sessions_policy: {access_ttl: %s}", populatedTTL)
	}
	if sessions != "" {
		sessions = "sessions: " + sessions
	}
	cfg := fmt.Sprintf(`listen: %s
store: %s
%s
master_key: %s
log:
  level: %s
  format: json
rate_limits: {enabled: false} # one load generator is one client IP
http: {max_connections_per_ip: 0} # and holds up to two connections per worker
access_tokens: {audience: [bench]}
%[10]s
apps:
  - name: %[6]s
    platform: wechat
    appid: %[7]s
    secret: bench-secret
    endpoint: %[8]s
  - name: %[9]s
    platform: wechat
    appid: %[7]s
    secret: bench-secret
    endpoint: %[8]s
    access_tokens: {format: jwt}
`, listen, store, sessions, base64.StdEncoding.EncodeToString(key), level, benchApp, benchAppID, emulator, benchJWTApp,
		policy)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// loginBody is the body of POST /v1/login for an open code.
func loginBody(user, rest string) []byte { return appLoginBody(benchApp, user, rest) }

// appLoginBody is loginBody for app.
func appLoginBody(app, user, rest string) []byte {
	b := make([]byte, 0, 64+len(app)+len(user)+len(rest))
	b = append(b, `{"app":"`+app+`","code":"`...)
	b = append(b, user...)
	b = append(b, '.')
	b = append(b, rest...)
	return append(b, `"}`...)
}

func newLogin(ctx context.Context, base string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/login", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func newSessionCheck(ctx context.Context, base, token string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/session", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return req, nil
}

// The two pools of users logged in before the scenarios: the session
// checks use the tokens of the first, and the returning users' logins go to
// the second. They are apart because those logins soon reach the service's
// cap on live sessions per user, which ends each user's oldest session: the
// one whose token the checks would use.
const (
	checkPool     = "p"
	returningPool = "r"
)

// poolUser is the name of user k of pool.
func poolUser(pool string, k uint64) string { return fmt.Sprintf("%s%d", pool, k) }

// loginPool logs in users users of pool (p0, p1, …) and returns an access
// token for each. Any failure is an error: the scenarios need every user.
func loginPool(ctx context.Context, base, pool string, users int) ([]string, error) {
	const workers = 16
	client := newClient(workers)
	defer client.CloseIdleConnections()
	tokens := make([]string, users)
	err := forEach(ctx, workers, users, func(k int) error {
		tok, err := loginOnce(ctx, client, base, loginBody(poolUser(pool, uint64(k)), "pool"))
		if err != nil {
			return fmt.Errorf("logging in pool user %d: %w", k, err)
		}
		tokens[k] = tok
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tokens, nil
}

// forEach calls fn for k = 0 to n-1 from workers goroutines, and returns
// the first error, or the context's, once every call has returned; after an
// error, no new call starts.
func forEach(ctx context.Context, workers, n int, fn func(k int) error) error {
	var (
		next    atomic.Int64
		failed  atomic.Bool
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n || failed.Load() || ctx.Err() != nil {
					return
				}
				if err := fn(k); err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func loginOnce(ctx context.Context, client *http.Client, base string, body []byte) (string, error) {
	req, err := newLogin(ctx, base, body)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("%s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		return "", fmt.Errorf("%s %s", resp.Status, out.Error)
	}
	return out.AccessToken, nil
}

// spread maps request n of worker w onto one of size items, so that the
// workers walk the items in step and together cover all of them evenly.
func spread(w int, n uint64, workers, size int) uint64 {
	return (uint64(w) + n*uint64(workers)) % uint64(size)
}

// tokenSource is the access token that request n of worker w presents.
type tokenSource func(w int, n uint64) string

// poolTokens walks the logged-in pool's tokens (spread).
func poolTokens(tokens []string, workers int) tokenSource {
	return func(w int, n uint64) string { return tokens[spread(w, n, workers, len(tokens))] }
}

// populatedTokens picks one of the even users of the first users populated
// ones uniformly at random (pick), and derives its token. The returning
// logins take the odd ones (populatedUsers): each adds a session, and past
// the cap of live sessions per identity it ends the user's oldest, the
// populated session that a check would present.
// With skew > 0, the pick follows skewedPick instead.
// key is the master key that seals the tokens.
func populatedTokens(p *populated, users int, skew float64, key []byte) (tokenSource, error) {
	half := (users + 1) / 2
	if _, err := newSealer(key); err != nil {
		return nil, err
	}
	// A sealer is one goroutine's; the open loop's workers are many.
	sealers := sync.Pool{New: func() any {
		sl, _ := newSealer(key) // the key was checked above
		return sl
	}}
	tok := func(_ int, i uint64) string {
		sl := sealers.Get().(*sealer)
		defer sealers.Put(sl)
		raw, _, err := p.access(sl, i)
		if err != nil {
			// Cannot happen (the nonce reader never fails); were it to,
			// the check's answer would count as a failure.
			return "mpa_unsealable"
		}
		return raw
	}
	if skew > 0 {
		return func(w int, n uint64) string { return tok(w, 2*skewedPick(w, n, half, skew)) }, nil
	}
	return func(w int, n uint64) string { return tok(w, 2*pick(w, n, half)) }, nil
}

// sessionRequests: GET /v1/session with the tokens of src. Against the
// bare handler, the same requests, and any 2xx answer is good.
func sessionRequests(base string, src tokenSource, want []byte) makeRequest {
	return func(ctx context.Context, w int, n uint64) (*http.Request, []byte, error) {
		req, err := newSessionCheck(ctx, base, src(w, n))
		return req, want, err
	}
}

// authzRequests: GET /v1/authz, a gateway's check, with the tokens of
// src; a good answer is a 200 with the user's id in X-User-Id, which the
// harness sees as a 2xx with an empty body.
func authzRequests(base string, src tokenSource) makeRequest {
	return func(ctx context.Context, w int, n uint64) (*http.Request, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/authz", nil)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+src(w, n))
		return req, nil, nil
	}
}

// loginNewRequests: POST /v1/login with a code of a user never seen.
// tag keeps the users of separate runs apart.
func loginNewRequests(base, tag string) makeRequest {
	return func(ctx context.Context, w int, n uint64) (*http.Request, []byte, error) {
		req, err := newLogin(ctx, base, loginBody(fmt.Sprintf("u%s-%d-%d", tag, w, n), "1"))
		return req, wantCreated, err
	}
}

// loginJWTRequests: loginNewRequests for the app with JWT access tokens.
func loginJWTRequests(base, tag string) makeRequest {
	return func(ctx context.Context, w int, n uint64) (*http.Request, []byte, error) {
		req, err := newLogin(ctx, base, appLoginBody(benchJWTApp, fmt.Sprintf("j%s-%d-%d", tag, w, n), "1"))
		return req, wantCreated, err
	}
}

// userSource is the returning user that request n of worker w logs in.
type userSource func(w int, n uint64) string

// poolUsers walks the returning pool's users users (spread).
func poolUsers(users, workers int) userSource {
	return func(w int, n uint64) string { return poolUser(returningPool, spread(w, n, workers, users)) }
}

// populatedUsers picks one of the odd users of the first users populated
// ones uniformly at random, for the returning logins (see populatedTokens).
// Each login draws afresh, not from (w, n) as the checks do: every round
// and every run would otherwise log in the same users again, whose
// sessions would pile up run after run until each login also ended one at
// the cap, a different and costlier load than a random returning user's.
func populatedUsers(users int) userSource {
	half := uint64(users / 2)
	return func(int, uint64) string { return populatedUser(2*mrand.Uint64N(half) + 1) }
}

// loginReturningRequests: POST /v1/login with a fresh code of a returning
// user of src.
func loginReturningRequests(base, tag string, src userSource) makeRequest {
	return func(ctx context.Context, w int, n uint64) (*http.Request, []byte, error) {
		req, err := newLogin(ctx, base, loginBody(src(w, n), fmt.Sprintf("%s-%d-%d", tag, w, n)))
		return req, wantReturned, err
	}
}

// soakRequests mixes what a service sees in steady use: of every ten
// requests, one login of a new user, one of a returning user and eight
// session checks.
func soakRequests(base, tag string, tokens tokenSource, users userSource) makeRequest {
	fresh := loginNewRequests(base, tag)
	returning := loginReturningRequests(base, tag, users)
	check := sessionRequests(base, tokens, wantActive)
	return func(ctx context.Context, w int, n uint64) (*http.Request, []byte, error) {
		switch n % 10 {
		case 0:
			return fresh(ctx, w, n)
		case 5:
			return returning(ctx, w, n)
		}
		return check(ctx, w, n)
	}
}
