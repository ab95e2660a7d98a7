// Package server wires a configuration into a running login service: the
// store, the platform clients, the session service and the HTTP server with
// its timeouts and graceful shutdown. cmd/mplogin is flags around it; tests
// start the whole service through it without a process.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	goredis "github.com/redis/go-redis/v9"

	"github.com/mplogin/mplogin"
	"github.com/mplogin/mplogin/accesstoken"
	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/httpapi"
	"github.com/mplogin/mplogin/keyring"
	"github.com/mplogin/mplogin/metrics"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/platform/alipay"
	"github.com/mplogin/mplogin/platform/baidu"
	"github.com/mplogin/mplogin/platform/douyin"
	"github.com/mplogin/mplogin/platform/kuaishou"
	"github.com/mplogin/mplogin/platform/qq"
	"github.com/mplogin/mplogin/platform/wechat"
	"github.com/mplogin/mplogin/session"
	"github.com/mplogin/mplogin/signing"
	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/store/postgres"
	redisstore "github.com/mplogin/mplogin/store/redis"
	"github.com/mplogin/mplogin/store/sqlite"
)

// Options are what a configuration does not say.
type Options struct {
	Logger *slog.Logger     // nil = discard
	Now    func() time.Time // nil = time.Now
	// PlatformHTTP is the client for platform calls; nil builds one per
	// platform family with timeouts fitted to the platform timeout.
	PlatformHTTP *http.Client
}

// Server is an assembled login service.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	store    store.Store
	sessions *session.Service
	tokens   *accesstoken.Manager
	signing  *signing.Manager // nil when no app issues JWTs
	handler  http.Handler
	// admin is the operators' API; nil when admin is not configured.
	admin http.Handler
	// metricsOut serves /metrics on metrics.listen; nil when that is not
	// set, and the API serves /metrics.
	metricsOut http.Handler
	metrics    *metrics.Metrics
	now        func() time.Time
	// onConnState, when set, sees every connection state change after
	// the connection limits do (tests wait on it).
	onConnState func(net.Conn, http.ConnState)
	// onListen, when set, sees each listener of its own (admin, metrics)
	// that Serve opens, once it is bound (tests wait on it).
	onListen func(name string, addr net.Addr)
}

// New opens the store and builds everything; Close releases it.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	keys, err := keyring.New(nil, cfg.MasterKey, cfg.OldMasterKeys...)
	if err != nil {
		return nil, fmt.Errorf("master_key: %w", err)
	}
	st, shared, err := openStores(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	tokens, err := accesstoken.New(accesstoken.Config{Store: st, Keys: keys, Now: now, Logger: log})
	if err != nil {
		st.Close()
		return nil, err
	}
	m := metrics.New(httpapi.Routes...)
	apps, err := apps(cfg, opts.PlatformHTTP, tokens, newGuard(m, log))
	if err != nil {
		st.Close()
		return nil, err
	}
	// Signing keys are made and rotated only when some app issues JWTs;
	// otherwise the JWK set is served empty.
	var (
		sm  *signing.Manager
		jwt *session.JWTConfig
	)
	if cfg.UsesJWT() {
		if sm, err = NewSigning(ctx, cfg, st, keys, now, log); err != nil {
			st.Close()
			return nil, err
		}
		jwt = &session.JWTConfig{Keys: sm, Issuer: cfg.Issuer}
	}
	// Sealed access tokens on the SQLite store, which keeps a change log
	// for them.
	changes, _ := st.(store.ChangeLog)
	// The session service's events name the request and client they came
	// from.
	svc, err := session.New(session.Config{
		Store: st, Changes: changes, Keys: keys, Apps: apps, Now: now, Logger: slog.New(httpapi.LogHandler(log.Handler())), JWT: jwt,
		Policy: session.Policy{
			AccessTTL: cfg.Policy.AccessTTL, RefreshTTL: cfg.Policy.RefreshTTL, MaxAge: cfg.Policy.MaxAge,
			KeyGrace: cfg.Policy.SessionKeyGrace, PlatformTimeout: cfg.PlatformTimeout,
			CodeReplayWindow: cfg.Policy.CodeReplayWindow, MaxSessionsPerIdentity: cfg.Policy.MaxSessionsPerIdentity,
			RefreshReuseGrace: cfg.Policy.RefreshReuseGrace, LinkByPhone: cfg.LinkByPhone,
		},
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	hc := httpapi.Config{Sessions: svc, Logger: log, Now: now,
		HandlerTimeout: cfg.PlatformTimeout + 5*time.Second,
		Limits:         limits(cfg.Limits, limiterFor(now, shared)), TrustedProxies: cfg.HTTP.TrustedProxies,
		IPv6Prefix: cfg.HTTP.IPv6Prefix, Metrics: m, Clients: clients(cfg.Clients), Issuer: cfg.IssuerURL(),
		Algorithm: cfg.SigningAlgorithm(), MetricsElsewhere: cfg.Metrics != nil}
	if sm != nil {
		hc.Keys = sm
	}
	h := httpapi.New(hc)
	srv := &Server{cfg: cfg, log: log, store: st, sessions: svc, tokens: tokens, signing: sm, handler: h, metrics: m, now: now}
	if cfg.Admin != nil {
		ts := make([]httpapi.AdminToken, len(cfg.Admin.Tokens))
		for i, t := range cfg.Admin.Tokens {
			ts[i] = httpapi.AdminToken{Name: t.Name, Token: t.Token}
		}
		srv.admin = httpapi.NewAdmin(httpapi.AdminConfig{Sessions: svc, Logger: log, Now: now,
			HandlerTimeout: hc.HandlerTimeout, Tokens: ts})
	}
	if cfg.Metrics != nil {
		srv.metricsOut = httpapi.NewMetrics(m, log)
	}
	return srv, nil
}

// NewSigning returns the signing-key manager of cfg on st, with the set
// loaded (and the first keys made, on a new deployment).
func NewSigning(ctx context.Context, cfg *config.Config, st store.Store, keys *keyring.Keyring, now func() time.Time,
	log *slog.Logger) (*signing.Manager, error) {
	sm, err := signing.New(signing.Config{Store: st, Keys: keys, Algorithm: jose.SignatureAlgorithm(cfg.SigningAlgorithm()),
		Rotation: cfg.SigningKeyRotation, MaxTokenTTL: cfg.MaxJWTTTL(), Now: now, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := sm.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return sm, nil
}

// Signing is the signing-key manager; nil when no app issues JWTs.
func (s *Server) Signing() *signing.Manager { return s.signing }

// clients are the configured business clients, for the API.
func clients(cs []config.Client) []httpapi.Client {
	out := make([]httpapi.Client, len(cs))
	for i, c := range cs {
		out[i] = httpapi.Client{ID: c.ID, Secret: c.Secret}
	}
	return out
}

// Tokens is the platform access-token manager, for embedding.
func (s *Server) Tokens() *accesstoken.Manager { return s.tokens }

// Handler is the API.
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler is the operators' API; nil when admin is not configured.
// Serve it only on a listener of its own (ServeAdmin).
func (s *Server) AdminHandler() http.Handler { return s.admin }

// MetricsHandler serves /metrics when metrics.listen is set; nil when it
// is not, and Handler serves /metrics. Serve it only on a listener of its
// own (ServeMetrics).
func (s *Server) MetricsHandler() http.Handler { return s.metricsOut }

// Sessions is the session service, for embedding.
func (s *Server) Sessions() *session.Service { return s.sessions }

// Close closes the store.
func (s *Server) Close() error { return s.store.Close() }

// Serve answers on ln until ctx is done, then stops accepting, lets requests
// in flight finish within the shutdown timeout, and returns nil. It keeps
// the connections within http.max_connections and
// http.max_connections_per_ip. With admin.listen or metrics.listen set, it
// also opens those listeners and serves the admin API or /metrics there.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	h := s.cfg.HTTP
	var lim *connLimiter
	if h.MaxConnections > 0 || h.MaxConnectionsPerIP > 0 {
		lim = newConnLimiter(ln, h.MaxConnections, h.MaxConnectionsPerIP, h.IPv6Prefix, s.trustedProxy, s.metrics, s.log)
		ln = lim
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.HTTP.ReadTimeout,
		WriteTimeout:      s.cfg.HTTP.WriteTimeout,
		IdleTimeout:       s.cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnState: func(c net.Conn, st http.ConnState) {
			if lim != nil {
				lim.connState(c, st)
			}
			if s.onConnState != nil {
				s.onConnState(c, st)
			}
		},
	}
	var wg sync.WaitGroup
	jctx, stopJanitor := context.WithCancel(ctx)
	wg.Add(1)
	go func() { defer wg.Done(); s.janitor(jctx) }()
	if s.signing != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.signing.Run(jctx) }()
	}
	defer func() { stopJanitor(); wg.Wait() }()
	return s.serveWithOwnListeners(ctx, func(ctx context.Context) error {
		return ServeHTTP(ctx, srv, ln, s.cfg.HTTP.ShutdownTimeout)
	})
}

// ownListener is a listener Serve opens beside the public one.
type ownListener struct {
	name  string // in errors and tests
	what  string // in the log
	addr  string
	serve func(context.Context, net.Listener) error
}

// serveWithOwnListeners runs serve, the public listener's server, with the
// admin API and /metrics on listeners of their own when configured. They
// have their own listeners so that the public one never routes to them.
// They stop with the service, and the failure of one stops the service:
// an operator who configured it counts on it.
func (s *Server) serveWithOwnListeners(ctx context.Context, serve func(context.Context) error) error {
	var own []ownListener
	if s.admin != nil {
		own = append(own, ownListener{"admin", "the admin API", s.cfg.Admin.Listen, s.ServeAdmin})
	}
	if s.metricsOut != nil {
		own = append(own, ownListener{"metrics", "/metrics", s.cfg.Metrics.Listen, s.ServeMetrics})
	}
	if len(own) == 0 {
		return serve(ctx)
	}
	lns := make([]net.Listener, 0, len(own))
	for _, o := range own {
		ln, err := net.Listen("tcp", o.addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return fmt.Errorf("%s listen: %w", o.name, err)
		}
		lns = append(lns, ln)
		s.log.Info("serving "+o.what, "addr", ln.Addr().String())
		if s.onListen != nil {
			s.onListen(o.name, ln.Addr())
		}
	}
	pctx, stopPublic := context.WithCancel(ctx)
	defer stopPublic()
	octx, stopOwn := context.WithCancel(ctx)
	defer stopOwn()
	errc := make(chan error, len(own))
	for i, o := range own {
		go func() {
			err := o.serve(octx, lns[i])
			if err != nil {
				err = fmt.Errorf("%s: %w", o.name, err)
				stopPublic()
			}
			errc <- err
		}()
	}
	err := serve(pctx)
	stopOwn()
	for range own {
		err = errors.Join(err, <-errc)
	}
	return err
}

// ServeAdmin answers the admin API on ln, a listener of its own, until ctx
// is done, with the public listener's timeouts; Serve calls it when
// admin.listen is set. An error when admin is not configured.
func (s *Server) ServeAdmin(ctx context.Context, ln net.Listener) error {
	if s.admin == nil {
		_ = ln.Close()
		return errors.New("admin is not configured")
	}
	return s.serveOwn(ctx, s.admin, ln)
}

// ServeMetrics answers /metrics on ln, a listener of its own, until ctx is
// done, with the public listener's timeouts; Serve calls it when
// metrics.listen is set. An error when it is not.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	if s.metricsOut == nil {
		_ = ln.Close()
		return errors.New("metrics.listen is not configured")
	}
	return s.serveOwn(ctx, s.metricsOut, ln)
}

// serveOwn runs h on ln, a listener of its own, with the public
// listener's timeouts and without its connection caps.
func (s *Server) serveOwn(ctx context.Context, h http.Handler, ln net.Listener) error {
	c := s.cfg.HTTP
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	return ServeHTTP(ctx, srv, ln, c.ShutdownTimeout)
}

func (s *Server) trustedProxy(a netip.Addr) bool {
	for _, p := range s.cfg.HTTP.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ServeHTTP runs srv on ln until ctx is done, then shuts it down gracefully
// within grace.
func ServeHTTP(ctx context.Context, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// janitorEvery paces the janitor. Each sweep removes what died since the
// last one; every minute keeps each sweep small (a minute of expired codes)
// instead of letting ten minutes of them pile up for one long sweep.
const janitorEvery = time.Minute

// janitor deletes expired codes and dead sessions now and then, so the
// store does not grow without bound.
func (s *Server) janitor(ctx context.Context) {
	t := time.NewTicker(janitorEvery)
	defer t.Stop()
	for {
		began := time.Now()
		n, err := s.store.DeleteExpired(ctx, s.now())
		s.metrics.Swept(n, time.Since(began))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("deleting expired sessions failed", "error", err)
		} else if n > 0 {
			s.log.Info("deleted expired sessions and codes", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// openStores opens the store and, when the configuration names one, the
// Redis session store in front of it; shared is that Redis, for the rate
// limits every instance must share (nil without one).
func openStores(ctx context.Context, cfg *config.Config, log *slog.Logger) (st store.Store, shared goredis.Scripter, err error) {
	var window time.Duration
	if cfg.Sessions == "" {
		window = ChangeWindow(cfg.Policy.AccessTTL)
	}
	durable, err := openStore(ctx, cfg.Store, log, window)
	if err != nil || cfg.Sessions == "" {
		return durable, nil, err
	}
	rs, err := redisstore.Open(ctx, cfg.Sessions, redisstore.Options{Logger: log})
	if err != nil {
		durable.Close()
		return nil, nil, fmt.Errorf("sessions: %w", err)
	}
	return store.Split(durable, rs), rs.Scripter(), nil
}

// SQLiteSessionCache is how many sessions the SQLite store keeps in memory
// for session checks: about 6 MiB when full, so that memory stays flat
// under a long load with many sessions.
const SQLiteSessionCache = 10_000

// ChangeWindow is how long the SQLite store of a service whose access
// tokens live accessTTL keeps its log of session changes: the longest an
// access token lives (with the clock tolerance its stored end carries),
// and a second for the token's minting time, which it tells to the
// millisecond.
func ChangeWindow(accessTTL time.Duration) time.Duration {
	return accessTTL + mplogin.MaxClockSkew + time.Second
}

// OpenStore opens the store a DSN names, for a command other than the
// service: a SQLite store then keeps its log of session changes as it is.
func OpenStore(ctx context.Context, dsn string, log *slog.Logger) (store.Store, error) {
	return openStore(ctx, dsn, log, 0)
}

// openStore opens the store a DSN names; a SQLite store keeps its session
// changes for window (none: 0).
func openStore(ctx context.Context, dsn string, log *slog.Logger, window time.Duration) (store.Store, error) {
	kind, target, err := config.StoreKind(dsn)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "sqlite":
		// One serve process per SQLite file (several instances use
		// PostgreSQL), so this process sees every session write and can
		// answer session checks from memory. Every login waits for the
		// one writer: it runs ahead of the request handlers where the
		// process may ask for that.
		st, err := sqlite.Open(ctx, target, sqlite.Options{Logger: log, CacheSessions: SQLiteSessionCache, FilterCodes: true,
			ChangeWindow: window, RaiseWriter: true})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return st, nil
	case "postgres":
		st, err := postgres.Open(ctx, dsn, postgres.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store: %s is not supported", kind)
}

// Code lifetimes of the platforms: how long a repeat of a code is honoured.
const (
	WeChatCodeTTL = 5 * time.Minute
	BaiduCodeTTL  = 10 * time.Minute
	DouyinCodeTTL = 5 * time.Minute
	QQCodeTTL     = 5 * time.Minute
	// AlipayCodeTTL: Alipay says its auth codes live "3 minutes to 24
	// hours"; a repeat is honoured within the replay window anyway.
	AlipayCodeTTL = 5 * time.Minute
	// KuaishouCodeTTL: Kuaishou does not say; its mini-game codes live 5
	// minutes.
	KuaishouCodeTTL = 5 * time.Minute
)

// Apps builds a platform client for every configured app, and the calls
// beyond login with the app's access token: its own from tokens (registered
// here), or its third-party token source. hc nil gives each platform family
// its own client; tokens nil leaves apps that need a manager without those
// calls, and is an error for a Baidu app that logs in with its access token
// (login_api access_token).
func Apps(cfg *config.Config, hc *http.Client, tokens *accesstoken.Manager) ([]session.App, error) {
	return apps(cfg, hc, tokens, nil)
}

// apps is Apps with every platform call behind g (nil: none).
func apps(cfg *config.Config, hc *http.Client, tokens *accesstoken.Manager, g *guard) ([]session.App, error) {
	clients := map[platform.Family]*http.Client{}
	httpFor := func(family platform.Family) *http.Client {
		if hc != nil {
			return hc
		}
		if c, ok := clients[family]; ok {
			return c
		}
		c := platform.NewHTTPClient(platform.HTTPConfig{Timeout: cfg.PlatformTimeout, ResponseHeaderTimeout: cfg.PlatformTimeout})
		clients[family] = c
		return c
	}
	var out []session.App
	for _, a := range cfg.Apps {
		var (
			c   platform.Client
			err error
			ttl = WeChatCodeTTL
			h   = httpFor(a.Family())
		)
		var (
			wapi *wechatWithToken // phone codes and session keys
			bapi *baiduWithToken  // unionids
			dapi *douyinWithToken // phone codes
			// Alipay's phone numbers, opened with the app's keys.
			aphones session.AlipayPhoneOpener
		)
		switch a.Flavor {
		case platform.FlavorWeChat:
			var wc *wechat.Client
			if wc, err = wechat.New(wechat.Config{AppID: a.AppID, Secret: a.Secret, Endpoint: a.Endpoint, HTTP: h}); err == nil {
				c = wc
				if d := own(tokens, platform.FamilyWeChat, a.AppID, g.fetcherFor(wechatFetcher(wc, a.TokenAPI), a.Flavor)); d != nil {
					wapi = &wechatWithToken{c: wc, tokens: d, g: g, flavor: a.Flavor}
				}
			}
		case platform.FlavorWeChatComponent:
			var cc *wechat.ComponentClient
			cc, err = wechat.NewComponent(wechat.ComponentConfig{AppID: a.AppID, ComponentAppID: a.ComponentAppID,
				ComponentToken: tokenSource(a.ComponentToken, h), Endpoint: a.Endpoint, HTTP: h})
			if err == nil {
				c = cc
				var d accesstoken.Doer
				switch {
				case a.AuthorizerToken != nil:
					d = accesstoken.FromSource(tokenSource(a.AuthorizerToken, h))
				case !a.Secret.IsZero():
					// The authorizer's own token, with its own secret.
					var wc *wechat.Client
					if wc, err = wechat.New(wechat.Config{AppID: a.AppID, Secret: a.Secret, Endpoint: a.Endpoint, HTTP: h}); err == nil {
						d = own(tokens, platform.FamilyWeChat, a.AppID, g.fetcherFor(wechatFetcher(wc, a.TokenAPI), a.Flavor))
					}
				}
				if d != nil {
					wapi = &wechatWithToken{c: cc, tokens: d, g: g, flavor: a.Flavor}
				}
			}
		case platform.FlavorBaidu, platform.FlavorBaiduLegacy:
			ttl = BaiduCodeTTL
			bcfg := baidu.Config{AppKey: a.AppKey, AppSecret: a.AppSecret,
				Legacy: a.Flavor == platform.FlavorBaiduLegacy, Endpoint: a.Endpoint, HTTP: h}
			if a.LoginAPI == config.LoginAPIAccessToken {
				if tokens == nil {
					err = errors.New("login_api access_token needs an access-token manager")
					break
				}
				// The manager fetches this token with the client made here
				// (registered by own below); a Source needs no registration
				// to be made, so one client both fetches and uses it.
				bcfg.AccessToken = tokens.Source(accesstoken.Key(platform.FamilyBaidu, a.AppKey))
			}
			var bc *baidu.Client
			if bc, err = baidu.New(bcfg); err == nil {
				c = bc
				if d := own(tokens, platform.FamilyBaidu, a.AppKey, g.fetcherFor(bc, a.Flavor)); d != nil {
					bapi = &baiduWithToken{c: bc, tokens: d, g: g, flavor: a.Flavor}
				}
			}
		case platform.FlavorBaiduTP:
			ttl = BaiduCodeTTL
			src := tokenSource(a.AuthorizerToken, h)
			var tc *baidu.TPClient
			if tc, err = baidu.NewTP(baidu.TPConfig{AppKey: a.AppKey, AuthorizerToken: src, Endpoint: a.Endpoint, HTTP: h}); err == nil {
				c = tc
				bapi = &baiduWithToken{c: tc, tokens: accesstoken.FromSource(src), g: g, flavor: a.Flavor}
			}
		case platform.FlavorDouyin:
			ttl = DouyinCodeTTL
			dcfg := douyin.Config{AppID: a.AppID, Secret: a.Secret, Endpoint: a.Endpoint, HTTP: h}
			if !a.RSAPrivateKey.IsZero() {
				if dcfg.PrivateKey, err = config.ParseRSAPrivateKey(a.RSAPrivateKey); err != nil {
					break
				}
			}
			var dc *douyin.Client
			if dc, err = douyin.New(dcfg); err == nil {
				c = dc
				d := own(tokens, platform.FamilyDouyin, a.AppID, g.fetcherFor(dc, a.Flavor))
				if d != nil && dcfg.PrivateKey != nil {
					dapi = &douyinWithToken{c: dc, tokens: d, g: g, flavor: a.Flavor}
				}
			}
		case platform.FlavorAlipay:
			ttl = AlipayCodeTTL
			acfg := alipay.Config{AppID: a.AppID, AESKey: a.AESKey, Endpoint: a.Endpoint, HTTP: h}
			if acfg.PrivateKey, err = config.ParseRSAPrivateKey(a.PrivateKey); err != nil {
				break
			}
			if acfg.AlipayPublicKey, err = config.ParseRSAPublicKey(a.AlipayPublicKey); err != nil {
				break
			}
			var ac *alipay.Client
			if ac, err = alipay.New(acfg); err == nil {
				c = ac
				if !a.AESKey.IsZero() {
					aphones = alipayPhones{ac}
				}
			}
		case platform.FlavorQQ:
			ttl = QQCodeTTL
			var qc *qq.Client
			if qc, err = qq.New(qq.Config{AppID: a.AppID, Secret: a.Secret, Endpoint: a.Endpoint, HTTP: h}); err == nil {
				c = qc
				// Nothing of mplogin's needs QQ's access token; the manager
				// keeps it for embedders (Server.Tokens), one fetch at a time.
				own(tokens, platform.FamilyQQ, a.AppID, g.fetcherFor(qc, a.Flavor))
			}
		case platform.FlavorKuaishou:
			ttl = KuaishouCodeTTL
			var kc *kuaishou.Client
			if kc, err = kuaishou.New(kuaishou.Config{AppID: a.AppID, AppSecret: a.AppSecret, Endpoint: a.Endpoint, HTTP: h}); err == nil {
				c = kc
				own(tokens, platform.FamilyKuaishou, a.AppID, g.fetcherFor(kc, a.Flavor))
			}
		default:
			err = fmt.Errorf("unknown platform %q", a.Flavor)
		}
		if err != nil {
			return nil, fmt.Errorf("apps %s: %w", a.Name, err)
		}
		if g != nil {
			c = g.client(c, a.Flavor)
		}
		app := session.App{Name: a.Name, Family: a.Family(), AppID: a.ID(), Client: c, CodeTTL: ttl,
			UserdataMaxAge: a.UserdataMaxAge, FetchUnionID: a.UnionID, ExposeUnionID: a.ExposeUnionID}
		if cfg.TokenFormat(a) == config.FormatJWT {
			app.JWT = &session.AppJWT{TTL: cfg.JWTTTL(a), Audience: cfg.Audience(a)}
		}
		if wapi != nil {
			app.Phones, app.SessionKeys = *wapi, *wapi
		}
		if bapi != nil {
			app.UnionIDs = *bapi
		}
		if dapi != nil {
			app.Phones = *dapi
		}
		app.AlipayPhones = aphones
		out = append(out, app)
	}
	return out, nil
}

// own registers an app's own access token with the manager (once per key:
// two configured apps may share a platform app) and returns its Doer; nil
// without a manager.
func own(m *accesstoken.Manager, family platform.Family, appID string, f accesstoken.Fetcher) accesstoken.Doer {
	if m == nil {
		return nil
	}
	key := accesstoken.Key(family, appID)
	// The key and fetcher are set, so the only possible error is a second
	// registration, and the first one's fetcher serves both apps.
	_ = m.Register(key, f)
	return m.Source(key)
}

// wechatFetcher is the app's token API: stable_token unless configured
// otherwise.
func wechatFetcher(c *wechat.Client, api string) accesstoken.Fetcher {
	if api == config.TokenAPIClassic {
		return accesstoken.FetcherFunc(c.FetchClassicAccessToken)
	}
	return c
}

func tokenSource(ts *config.TokenSource, hc *http.Client) platform.TokenSource {
	if ts == nil {
		return nil
	}
	if ts.URL != "" {
		return &platform.URLTokenSource{URL: ts.URL, HTTP: hc}
	}
	return platform.StaticToken(ts.Value)
}
