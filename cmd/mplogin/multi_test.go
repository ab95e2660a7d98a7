package main

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
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mplogin/mplogin/internal/testutil"
)

// The deployment this test runs is the one docs/deploy.md describes: several
// instances of `mplogin serve` sharing PostgreSQL (store) and Redis
// (sessions). Between the instances and each server sits a TCP proxy of the
// test's own, so that an outage of either can be simulated without touching
// the servers other tests use.

const (
	multiAppID     = "wx0123456789abcdef"
	multiMasterKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	// multiHandlerTimeout is the service's handler timeout with the default
	// platform_timeout (5s): platform_timeout + 5s (server.New).
	multiHandlerTimeout = 10 * time.Second
	// multiOutage is how long each store stays away.
	multiOutage = 10 * time.Second
	// multiRecovery is how soon after a store returns every instance must
	// answer again.
	multiRecovery = 5 * time.Second
)

// Three `mplogin serve` processes and one `mplogin emulate`, sharing
// PostgreSQL (a schema of the test's own) and Redis: a session made on one
// instance is checked, refreshed and revoked on the others; a repeated code
// is recognised on another instance; 300 concurrent calls over the three
// after the platform expired the access token make one token fetch; decrypt
// failures count per session across instances; Redis, then PostgreSQL, goes
// away for 10 s under load (503 store_unavailable, never a 500 or a hang,
// recovery within 5 s without a restart); and no acknowledged session or
// identity is lost.
func TestThreeInstancesSharePostgresAndRedis(t *testing.T) {
	pgURL, redisURL := os.Getenv("MPLOGIN_TEST_POSTGRES"), os.Getenv("MPLOGIN_TEST_REDIS")
	if pgURL == "" || redisURL == "" {
		t.Skip("set MPLOGIN_TEST_POSTGRES and MPLOGIN_TEST_REDIS (e.g. postgres://root@127.0.0.1:5432/test?sslmode=disable " +
			"and redis://127.0.0.1:6379/0) to run three instances against shared stores")
	}
	bin := binary(t)
	ctx := context.Background()

	// A schema of its own in PostgreSQL, dropped at the end (registered
	// first, so it runs after the services and proxies are gone).
	schema := "mplogin_multi_" + strconv.Itoa(os.Getpid()) + "_" + randHex(t, 4)
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("MPLOGIN_TEST_POSTGRES: %v", err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(cctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close(cctx)
	})
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema: %v", err)
	}

	// The proxies, and the stores' URLs through them. Redis keys are random
	// (hashes of random tokens and unique codes) and live for the short
	// session policy below, so the test shares MPLOGIN_TEST_REDIS's database
	// without flushing it.
	pgProxy, pgDSN := throughProxy(t, pgURL, "postgres")
	redisProxy, redisDSN := throughProxy(t, redisURL, "redis")
	pgDSN = withQuery(t, pgDSN, "search_path", schema)

	emu := "http://" + startEmulator(t, bin)

	cfg := filepath.Join(t.TempDir(), "mplogin.yaml")
	writeMultiConfig(t, cfg, pgDSN, redisDSN, emu)
	var insts [3]*testutil.Process
	var base [3]string
	for i := range insts {
		var addr string
		insts[i], addr = serve(t, bin, cfg)
		base[i] = "http://" + addr
	}
	// The instances log at info, for their access-token refreshes; a
	// failure shows their warnings and errors, or what it names.
	logsAbout := func(words ...string) string {
		var b strings.Builder
		for i, p := range insts {
			fmt.Fprintf(&b, "--- instance %c: log lines with %q ---\n%s", 'A'+i, words, grepTail(p.Stderr(), words, 20))
		}
		return b.String()
	}
	logs := func() string { return logsAbout(`"level":"WARN"`, `"level":"ERROR"`) }

	// The migrations ran in the test's schema, from the search_path in the DSN.
	var tables int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = $1 AND table_name IN ('users', 'identities', 'access_tokens', 'leases', 'schema_migrations')`,
		schema).Scan(&tables); err != nil || tables != 5 {
		t.Fatalf("tables in schema %s: %d, %v (want 5: search_path in the DSN not honoured?)", schema, tables, err)
	}

	c := newMultiClient()
	t.Cleanup(c.hc.CloseIdleConnections)
	run := randHex(t, 4)
	mustOK := func(t *testing.T, what string, r result, want int) result {
		t.Helper()
		if r.err != nil || r.status != want {
			t.Fatalf("%s: %d %s %v, want %d\n%s", what, r.status, r.body, r.err, want, logs())
		}
		return r
	}
	mint := func(t *testing.T, user string) string {
		t.Helper()
		r := mustOK(t, "mint code", c.do(ctx, "POST", emu+"/_emulator/login", "",
			fmt.Sprintf(`{"platform":"wechat","appid":%q,"user":%q}`, multiAppID, user)), 200)
		return r.str("code")
	}
	login := func(t *testing.T, inst int, code string) result {
		t.Helper()
		return mustOK(t, fmt.Sprintf("login on %c", 'A'+inst), c.do(ctx, "POST", base[inst]+"/v1/login", "",
			fmt.Sprintf(`{"app":"shop","code":%q}`, code)), 200)
	}
	// Sessions that must still be valid at the end.
	type ackedLogin struct{ access, openid, userID string }
	var (
		ackMu sync.Mutex
		acked []ackedLogin
	)
	ack := func(r result) {
		ackMu.Lock()
		acked = append(acked, ackedLogin{r.str("access_token"), r.user("openid"), r.user("id")})
		ackMu.Unlock()
	}

	// (a) Log in on A, check on B, refresh on C, log out on A, and B knows
	// at once.
	t.Run("session across instances", func(t *testing.T) {
		l := login(t, 0, mint(t, "alice-"+run))
		access, refresh := l.str("access_token"), l.str("refresh_token")
		s := mustOK(t, "check on B", c.do(ctx, "GET", base[1]+"/v1/session", access, ""), 200)
		if l.user("id") == "" || l.user("openid") == "" || s.user("id") != l.user("id") || s.user("openid") != l.user("openid") {
			t.Fatalf("check on B: user %s, want %s", s.body, l.body)
		}
		r := mustOK(t, "refresh on C", c.do(ctx, "POST", base[2]+"/v1/token", "",
			fmt.Sprintf(`{"grant_type":"refresh_token","refresh_token":%q}`, refresh)), 200)
		access2, refresh2 := r.str("access_token"), r.str("refresh_token")
		if access2 == "" || refresh2 == "" || access2 == access || refresh2 == refresh {
			t.Fatalf("refresh on C gave no new tokens: %s", r.body)
		}
		mustOK(t, "check new token on A", c.do(ctx, "GET", base[0]+"/v1/session", access2, ""), 200)
		mustOK(t, "logout on A", c.do(ctx, "POST", base[0]+"/v1/logout", access2, ""), 204)
		r = c.do(ctx, "GET", base[1]+"/v1/session", access2, "")
		if r.err != nil || r.status != 401 || r.str("error") != "invalid_token" {
			t.Fatalf("check on B right after logout on A: %d %s %v, want 401 invalid_token\n%s", r.status, r.body, r.err, logs())
		}
		r = c.do(ctx, "POST", base[2]+"/v1/token", "", fmt.Sprintf(`{"grant_type":"refresh_token","refresh_token":%q}`, refresh2))
		if r.err != nil || r.status != 400 || r.str("error") != "invalid_grant" {
			t.Fatalf("refresh on C after logout on A: %d %s %v, want 400 invalid_grant", r.status, r.body, r.err)
		}
	})

	// (b) A code exchanged on A and repeated on B: the same user, not
	// invalid_code.
	t.Run("code dedupe across instances", func(t *testing.T) {
		code := mint(t, "bob-"+run)
		first := login(t, 0, code)
		again := login(t, 1, code)
		if again.user("id") == "" || again.user("id") != first.user("id") {
			t.Fatalf("repeated code on B: user %q, want %q (%s)", again.user("id"), first.user("id"), again.body)
		}
		if again.str("access_token") == first.str("access_token") {
			t.Fatalf("repeated code on B gave the same session")
		}
		ack(first)
		ack(again)
	})

	// (c) 300 concurrent calls that need the platform access token, right
	// after the platform expired it, spread over A, B and C: one fetch.
	t.Run("one token fetch across instances", func(t *testing.T) {
		l := login(t, 2, mint(t, "carol-"+run))
		ack(l)
		access := l.str("access_token")
		// Every instance holds the current token in memory first.
		for i := range base {
			r := mustOK(t, fmt.Sprintf("verify=platform on %c", 'A'+i), c.do(ctx, "GET", base[i]+"/v1/session?verify=platform", access, ""), 200)
			if v, _ := r.m["session_key_valid"].(bool); !v {
				t.Fatalf("warm-up on %c: %s", 'A'+i, r.body)
			}
		}
		mustOK(t, "expire tokens", c.do(ctx, "POST", emu+"/_emulator/tokens/expire", "",
			fmt.Sprintf(`{"platform":"wechat","appid":%q}`, multiAppID)), 204)
		before := emulatorCalls(t, c, emu)

		const perInstance = 100
		results := make([]result, 3*perInstance)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for n := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[n] = c.do(ctx, "GET", base[n%3]+"/v1/session?verify=platform", access, "")
			}()
		}
		close(start)
		wg.Wait()
		after := emulatorCalls(t, c, emu)

		bad := map[string]int{}
		for _, r := range results {
			if v, _ := r.m["session_key_valid"].(bool); r.err != nil || r.status != 200 || !v {
				bad[fmt.Sprintf("%d %s %v", r.status, r.body, r.err)]++
			}
		}
		if len(bad) > 0 {
			t.Errorf("of %d calls, these failed: %v", len(results), bad)
		}
		fetches := after["/cgi-bin/stable_token"] - before["/cgi-bin/stable_token"]
		t.Logf("%d concurrent verify=platform calls over A, B, C after the token expired: %d stable_token fetch(es), %d checksession calls",
			len(results), fetches, after["/wxa/checksession"]-before["/wxa/checksession"])
		if fetches != 1 {
			t.Errorf("BUG: %d stable_token fetches for one expired token across three instances, want exactly 1 "+
				"(accesstoken: the store lease should let one instance fetch)\n%s", fetches, logsAbout("access token"))
		}
		if classic := after["/cgi-bin/token"] - before["/cgi-bin/token"]; classic != 0 {
			t.Errorf("%d classic cgi-bin/token fetches, want 0", classic)
		}
	})

	// (d) Decrypt failures count per session wherever they happen: 5 over
	// A, B and C lock the session on every instance.
	t.Run("decrypt failures shared", func(t *testing.T) {
		user := "dora-" + run
		l := login(t, 0, mint(t, user))
		ack(l)
		access := l.str("access_token")
		good := mustOK(t, "mint userdata", c.do(ctx, "POST", emu+"/_emulator/userdata", "",
			fmt.Sprintf(`{"platform":"wechat","appid":%q,"user":%q,"kind":"userinfo"}`, multiAppID, user)), 200).body
		decrypt := func(inst int, body string) result {
			return c.do(ctx, "POST", base[inst]+"/v1/userdata/decrypt", access, body)
		}
		garbage := func() string {
			return fmt.Sprintf(`{"encrypted_data":%q,"iv":%q}`, randB64(t, 48), randB64(t, 16))
		}
		mustOK(t, "good payload on A before any failure", decrypt(0, string(good)), 200)
		fail := func(n, inst int) {
			t.Helper()
			r := decrypt(inst, garbage())
			if r.err != nil || r.status != 422 || r.str("error") != "decrypt_failed" {
				t.Fatalf("bad payload %d on %c: %d %s %v, want 422 decrypt_failed", n, 'A'+inst, r.status, r.body, r.err)
			}
		}
		for n, inst := range []int{0, 1, 2, 0} {
			fail(n+1, inst)
		}
		// 4 failures: not locked yet, and a success does not reset the count.
		mustOK(t, "good payload on B after 4 failures", decrypt(1, string(good)), 200)
		fail(5, 2)
		for _, inst := range []int{0, 1, 2} {
			r := decrypt(inst, string(good))
			if r.err != nil || r.status != 422 || r.str("error") != "decrypt_failed" {
				t.Fatalf("good payload on %c after 5 failures over A, B, C: %d %s %v, want 422 decrypt_failed (failure count not shared?)",
					'A'+inst, r.status, r.body, r.err)
			}
		}
		// Locked for decryption, the session itself is still valid.
		mustOK(t, "check after lock", c.do(ctx, "GET", base[1]+"/v1/session", access, ""), 200)
	})

	// (e) Redis, then PostgreSQL, goes away for 10 s under a steady light
	// load on every instance.
	t.Run("store outages", func(t *testing.T) {
		lg := startLoad(c, base, run)
		// A few acknowledged logins on every instance before the first outage.
		if err := lg.waitAcks(30, 20*time.Second); err != nil {
			lg.stop()
			t.Fatalf("load before the outages: %v\n%s", err, logs())
		}
		var phases []*outagePhase
		for _, o := range []struct {
			name  string
			proxy *testutil.Proxy
		}{{"redis", redisProxy}, {"postgres", pgProxy}} {
			ph := &outagePhase{name: o.name}
			phases = append(phases, ph)
			ph.cut = time.Now()
			o.proxy.Stop()
			// The outage has begun once every forwarded connection is
			// closed: what started before may still have been answered.
			ph.down = time.Now()
			// Readiness, asked directly, fails on every instance.
			for i := range base {
				r := c.do(ctx, "GET", base[i]+"/readyz", "", "")
				if r.err != nil || r.status != 503 || r.str("error") != "store_unavailable" {
					t.Errorf("%s down: /readyz on %c: %d %s %v, want 503 store_unavailable", o.name, 'A'+i, r.status, r.body, r.err)
				}
			}
			<-time.After(time.Until(ph.down.Add(multiOutage))) // the outage's length, not a synchronisation
			ph.up = time.Now()
			if err := o.proxy.Start(); err != nil {
				lg.stop()
				t.Fatalf("%s proxy: listening again: %v", o.name, err)
			}
			// Every instance answers again within multiRecovery: polled,
			// since the instances are child processes.
			var err error
			ph.recovered, err = waitRecovered(c, base, ph.up.Add(multiRecovery), ack, run+"-"+o.name)
			if err != nil {
				lg.stop()
				t.Fatalf("BUG: after %s came back: %v\n%s", o.name, err, logs())
			}
			ph.settled = time.Now() // every instance has recovered: no answer after this may fail
			if err := lg.waitAcks(lg.acks()+30, 20*time.Second); err != nil {
				lg.stop()
				t.Fatalf("load after %s came back: %v\n%s", o.name, err, logs())
			}
		}
		lg.stop()

		for _, r := range lg.records {
			if r.kind == "login" && r.status == 200 && r.access != "" {
				ackMu.Lock()
				acked = append(acked, ackedLogin{r.access, r.openid, r.userID})
				ackMu.Unlock()
			}
		}
		for _, problem := range judgeOutages(lg.records, phases) {
			t.Error(problem)
		}
		for _, ph := range phases {
			t.Logf("%s down from %s for %v: %s", ph.name, ph.down.Format("15:04:05.000"), ph.up.Sub(ph.down).Round(time.Millisecond), ph.summary(lg.records))
		}
		if t.Failed() {
			t.Log(logs())
		}
	})

	// No acknowledged session lost: every login that returned 200 and was
	// not logged out still checks, on any instance; its user and identity
	// are in PostgreSQL.
	t.Run("no acknowledged session lost", func(t *testing.T) {
		ackMu.Lock()
		all := append([]ackedLogin(nil), acked...)
		ackMu.Unlock()
		if len(all) == 0 {
			t.Fatal("no acknowledged logins")
		}
		var (
			lost   atomic.Int64
			mu     sync.Mutex
			sample []string
			wg     sync.WaitGroup
			next   atomic.Int64
		)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := int(next.Add(1)) - 1
					if n >= len(all) {
						return
					}
					r := c.do(ctx, "GET", base[n%3]+"/v1/session", all[n].access, "")
					if r.err != nil || r.status != 200 || r.user("id") != all[n].userID {
						lost.Add(1)
						mu.Lock()
						if len(sample) < 5 {
							sample = append(sample, fmt.Sprintf("%d %s %v", r.status, r.body, r.err))
						}
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		if lost.Load() > 0 {
			t.Errorf("%d of %d acknowledged sessions no longer check: %v", lost.Load(), len(all), sample)
		}

		openids := make([]string, 0, len(all))
		want := map[string]string{}
		for _, a := range all {
			openids = append(openids, a.openid)
			want[a.openid] = a.userID
		}
		rows, err := admin.Query(ctx, `SELECT i.open_id, u.id FROM `+pgx.Identifier{schema, "identities"}.Sanitize()+` i
			JOIN `+pgx.Identifier{schema, "users"}.Sanitize()+` u ON u.id = i.user_id
			WHERE i.platform = 'wechat' AND i.app_id = $1 AND i.open_id = ANY($2)`, multiAppID, openids)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var oid, uid string
			if err := rows.Scan(&oid, &uid); err != nil {
				t.Fatal(err)
			}
			got[oid] = uid
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		missing := 0
		for oid, uid := range want {
			if got[oid] != uid {
				missing++
				if missing <= 5 {
					t.Errorf("identity of openid %s: user %q in PostgreSQL, the login said %q", oid, got[oid], uid)
				}
			}
		}
		if missing > 0 {
			t.Errorf("%d of %d acknowledged identities missing or wrong in PostgreSQL", missing, len(want))
		}
		if !t.Failed() {
			t.Logf("%d acknowledged sessions (%d users) all valid on A, B, C; every identity and user in schema %s",
				len(all), len(want), schema)
		}
	})
}

// writeMultiConfig writes the configuration all three instances run, each
// on a port of its own choosing (it says which once it listens).
func writeMultiConfig(t *testing.T, path, pgDSN, redisDSN, emu string) {
	t.Helper()
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
store: '%s'
sessions: '%s'
master_key: %s
log: {level: info, format: json}
rate_limits: {enabled: false} # every request comes from 127.0.0.1
sessions_policy: # short, so that the test's keys leave the shared Redis soon
  access_ttl: 15m
  refresh_ttl: 15m
  max_age: 30m
apps:
  - name: shop
    platform: wechat
    appid: %s
    secret: s3cret-for-tests
    endpoint: %s
`, pgDSN, redisDSN, multiMasterKey, multiAppID, emu)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// throughProxy starts a proxy to the server of a postgres:// or redis://
// URL and returns it with the URL pointed at it.
func throughProxy(t *testing.T, raw, what string) (*testutil.Proxy, string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		t.Fatalf("the %s URL must be of the form scheme://host:port/…: %v", what, err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"postgres": "5432", "redis": "6379"}[what]
	}
	if host == "" {
		host = "127.0.0.1"
	}
	p := testutil.NewProxy(t, net.JoinHostPort(host, port))
	u.Host = p.Addr()
	return p, u.String()
}

func withQuery(t *testing.T, dsn, key, value string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func randB64(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// grepTail returns the last n lines of s that contain one of words.
func grepTail(s string, words []string, n int) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	if len(out) > n {
		out = append([]string{fmt.Sprintf("(%d earlier lines)", len(out)-n)}, out[len(out)-n:]...)
	}
	if len(out) == 0 {
		return "(none)\n"
	}
	return strings.Join(out, "\n") + "\n"
}

// startEmulator runs `mplogin emulate --open-codes` on a port of its own
// choosing and returns its address once it listens.
func startEmulator(t *testing.T, bin string) string {
	t.Helper()
	p := testutil.StartProcess(t, "mplogin emulate", bin, []string{"emulate", "--listen", "127.0.0.1:0", "--open-codes"},
		testutil.ProcessOptions{Ready: testutil.EmulatorLine()})
	m, err := p.WaitReady(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return m[1]
}

func emulatorCalls(t *testing.T, c *multiClient, emu string) map[string]int64 {
	t.Helper()
	r := c.do(context.Background(), "GET", emu+"/_emulator/stats", "", "")
	var v struct {
		Calls map[string]int64 `json:"calls"`
	}
	if r.err != nil || r.status != 200 || json.Unmarshal(r.body, &v) != nil {
		t.Fatalf("emulator stats: %d %s %v", r.status, r.body, r.err)
	}
	return v.Calls
}

// multiClient is an HTTP client for many concurrent calls to few hosts.
type multiClient struct{ hc *http.Client }

func newMultiClient() *multiClient {
	return &multiClient{hc: &http.Client{
		// Longer than the service's handler timeout: a call that runs into
		// this is a hang.
		Timeout: multiHandlerTimeout + 3*time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        512,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     30 * time.Second,
		},
	}}
}

// result is one answer, or the error of a call that got none.
type result struct {
	status     int
	body       []byte
	m          map[string]any
	err        error
	start, end time.Time
}

func (r result) str(k string) string { s, _ := r.m[k].(string); return s }

func (r result) user(k string) string {
	u, _ := r.m["user"].(map[string]any)
	s, _ := u[k].(string)
	return s
}

func (r result) ok200() bool { return r.err == nil && r.status == 200 && r.str("access_token") != "" }

func (c *multiClient) do(ctx context.Context, method, u, token, body string) result {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := result{start: time.Now()}
	defer func() { r.end = time.Now() }()
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		r.err = err
		return r
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		r.err, r.end = err, time.Now()
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	r.body, r.err = io.ReadAll(resp.Body)
	r.end = time.Now()
	if len(bytes.TrimSpace(r.body)) > 0 && r.err == nil {
		if err := json.Unmarshal(r.body, &r.m); err != nil {
			r.err = fmt.Errorf("body is not a JSON object: %w", err)
		}
	}
	return r
}

// load is a steady light load on every instance: a login, a check of the
// worker's latest session on the next instance, and /readyz, about 25
// times a second per instance.
type load struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	records []loadRecord
	nacks   atomic.Int64
	acked   chan struct{} // a token per acknowledged login, dropped when full
}

type loadRecord struct {
	inst                   int
	kind                   string // login, check, readyz
	start, end             time.Time
	status                 int
	code                   string
	err                    error
	access, openid, userID string
}

func startLoad(c *multiClient, base [3]string, run string) *load {
	ctx, cancel := context.WithCancel(context.Background())
	lg := &load{cancel: cancel, acked: make(chan struct{}, 1)}
	for i := range base {
		lg.wg.Add(1)
		go func() {
			defer lg.wg.Done()
			tick := time.NewTicker(40 * time.Millisecond) // pacing, not synchronisation
			defer tick.Stop()
			var latest string
			for n := 0; ; n++ {
				rec := func(kind string, r result) {
					lr := loadRecord{inst: i, kind: kind, start: r.start, end: r.end, status: r.status, code: r.str("error"), err: r.err}
					if ctx.Err() != nil && r.err != nil {
						return // the load was stopped under this call: no verdict
					}
					if kind == "login" && r.ok200() {
						lr.access, lr.openid, lr.userID = r.str("access_token"), r.user("openid"), r.user("id")
					}
					lg.mu.Lock()
					lg.records = append(lg.records, lr)
					lg.mu.Unlock()
				}
				r := c.do(ctx, "POST", base[i]+"/v1/login", "", fmt.Sprintf(`{"app":"shop","code":"ld%d-%s-%d.x"}`, i, run, n))
				rec("login", r)
				if r.ok200() {
					latest = r.str("access_token")
					lg.nacks.Add(1)
					select {
					case lg.acked <- struct{}{}:
					default:
					}
				}
				if latest != "" {
					rec("check", c.do(ctx, "GET", base[(i+1)%3]+"/v1/session", latest, ""))
				}
				rec("readyz", c.do(ctx, "GET", base[i]+"/readyz", "", ""))
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	return lg
}

func (lg *load) acks() int64 { return lg.nacks.Load() }

// waitAcks waits until n logins of the load were acknowledged.
func (lg *load) waitAcks(n int64, within time.Duration) error {
	deadline := time.After(within)
	for lg.nacks.Load() < n {
		select {
		case <-lg.acked:
		case <-deadline:
			lg.mu.Lock()
			last := ""
			if len(lg.records) > 0 {
				r := lg.records[len(lg.records)-1]
				last = fmt.Sprintf("; last: %s on %c: %d %s %v", r.kind, 'A'+r.inst, r.status, r.code, r.err)
			}
			lg.mu.Unlock()
			return fmt.Errorf("%d of %d logins acknowledged in %v%s", lg.nacks.Load(), n, within, last)
		}
	}
	return nil
}

func (lg *load) stop() {
	lg.cancel()
	lg.wg.Wait()
}

// waitRecovered polls every instance until /readyz, a login and a check all
// succeed, and returns when each did; an error names the instances that had
// not by the deadline.
func waitRecovered(c *multiClient, base [3]string, deadline time.Time, ack func(result), run string) ([3]time.Time, error) {
	var at [3]time.Time
	var last [3]string
	ctx := context.Background()
	for n := 0; ; n++ {
		pending := 0
		for i := range base {
			if !at[i].IsZero() {
				continue
			}
			r := c.do(ctx, "GET", base[i]+"/readyz", "", "")
			if r.err != nil || r.status != 200 {
				last[i] = fmt.Sprintf("readyz %d %s %v", r.status, r.body, r.err)
				pending++
				continue
			}
			code := fmt.Sprintf("rc%d-%s-%d.x", i, run, n)
			l := c.do(ctx, "POST", base[i]+"/v1/login", "", fmt.Sprintf(`{"app":"shop","code":%q}`, code))
			if !l.ok200() {
				last[i] = fmt.Sprintf("login %d %s %v", l.status, l.body, l.err)
				pending++
				continue
			}
			ack(l)
			s := c.do(ctx, "GET", base[i]+"/v1/session", l.str("access_token"), "")
			if s.err != nil || s.status != 200 {
				last[i] = fmt.Sprintf("check %d %s %v", s.status, s.body, s.err)
				pending++
				continue
			}
			at[i] = time.Now()
		}
		if pending == 0 {
			return at, nil
		}
		if time.Now().After(deadline) {
			var msgs []string
			for i := range base {
				if at[i].IsZero() {
					msgs = append(msgs, fmt.Sprintf("instance %c not recovered: %s", 'A'+i, last[i]))
				}
			}
			return at, fmt.Errorf("%s", strings.Join(msgs, "; "))
		}
		time.Sleep(50 * time.Millisecond) // polling child processes
	}
}

// outagePhase is one store's outage as the test saw it: the proxy was
// stopped between cut and down, and listened again from up; every instance
// had recovered by settled.
type outagePhase struct {
	name                   string
	cut, down, up, settled time.Time
	recovered              [3]time.Time
}

func (ph *outagePhase) summary(records []loadRecord) string {
	counts := map[string]int{}
	var maxLatency time.Duration
	for _, r := range records {
		if r.start.Before(ph.down) || r.start.After(ph.up) {
			continue
		}
		counts[fmt.Sprintf("%s %d", r.kind, r.status)]++
		maxLatency = max(maxLatency, r.end.Sub(r.start))
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s×%d ", k, counts[k])
	}
	var rec []string
	for i, at := range ph.recovered {
		rec = append(rec, fmt.Sprintf("%c %v", 'A'+i, at.Sub(ph.up).Round(time.Millisecond)))
	}
	return fmt.Sprintf("answers started during the outage: %slongest %v; recovered after: %s",
		b.String(), maxLatency.Round(time.Millisecond), strings.Join(rec, ", "))
}

// judgeOutages checks every answer of the load against the outages: never a
// 500, never an error other than store_unavailable, never a call without an
// answer or slower than the handler timeout; during a Redis outage every
// call fails with 503 store_unavailable, during a PostgreSQL outage logins
// and /readyz do (a check needs only Redis); once every instance answered
// again after a store returned, everything succeeds.
func judgeOutages(records []loadRecord, phases []*outagePhase) []string {
	var problems []string
	seen := map[string]int{}
	report := func(kind string, r loadRecord, why string) {
		key := kind + " " + r.kind
		seen[key]++
		if seen[key] <= 3 {
			problems = append(problems, fmt.Sprintf("%s: %s on %c at %s, %v long: %d %q %v",
				why, r.kind, 'A'+r.inst, r.start.Format("15:04:05.000"), r.end.Sub(r.start).Round(time.Millisecond), r.status, r.code, r.err))
		}
	}
	for _, r := range records {
		if r.err != nil {
			var ne net.Error
			if errors.As(r.err, &ne) && ne.Timeout() {
				report("hang", r, "BUG: no answer within the handler timeout (+3s)")
			} else {
				report("transport", r, "BUG: no answer")
			}
			continue
		}
		if d := r.end.Sub(r.start); d > multiHandlerTimeout+time.Second {
			report("slow", r, "BUG: slower than the handler timeout")
		}
		switch {
		case r.status == 500:
			report("500", r, "BUG: 500 during the store outages")
			continue
		case r.status == 503 && r.code != "store_unavailable":
			report("503", r, "503 that is not store_unavailable")
			continue
		case r.status != 200 && r.status != 503:
			report("status", r, "unexpected status")
			continue
		}
		for _, ph := range phases {
			inside := !r.start.Before(ph.down) && !r.end.After(ph.up)
			mustFail := ph.name == "redis" || r.kind != "check"
			if inside && mustFail && r.status != 503 {
				report("inside-"+ph.name, r, fmt.Sprintf("answered %d while %s was down", r.status, ph.name))
			}
			if !r.start.Before(ph.settled) && r.status != 200 {
				relapse := true
				for _, other := range phases {
					if other != ph && !r.end.Before(other.cut) && !r.start.After(other.settled) {
						relapse = false // that one's outage
					}
				}
				if relapse {
					report("after-"+ph.name, r, fmt.Sprintf("BUG: failed after every instance had recovered from the %s outage", ph.name))
				}
			}
		}
	}
	for k, n := range seen {
		if n > 3 {
			problems = append(problems, fmt.Sprintf("(%d more of %s)", n-3, k))
		}
	}
	sort.Strings(problems)
	return problems
}
