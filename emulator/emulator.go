package emulator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mplogin/mplogin/platform"
)

// Families as they appear in App.Family and in the control API's "platform".
const (
	wechat = "wechat"
	baidu  = "baidu"
)

// maxPlatformBody caps what a platform path reads from a request body
// (Baidu's form posts); the real bodies are a few hundred bytes.
const maxPlatformBody = 64 << 10

// App is one application the emulator knows. With Config.Apps set, only these
// apps and their secrets are accepted.
type App struct {
	Family platform.Family // wechat or baidu; a flavor (wechat-component, …) stands for its family
	AppID  string          // WeChat appid, or Baidu app_key
	Secret string          // WeChat secret / Baidu app_secret; "" means: any secret accepted for this app
	Owner  string          // unionid scope; "" = the default owner shared by all apps

	// Third-party platforms: when non-empty, the only component_access_token (WeChat)
	// or authorizer access_token (Baidu third-party) accepted for this app's codes.
	ComponentAppID  string // WeChat component appid this authorizer app is bound to ("" = any)
	ThirdPartyToken string

	// RSAPublicKey is a Douyin app's public key, set in Douyin's console:
	// get_phonenumber_info encrypts numbers with it, and refuses phone
	// codes when it is nil.
	RSAPublicKey *rsa.PublicKey

	// AlipayPublicKey is an Alipay app's public key, uploaded to Alipay's
	// console: the gateway verifies the app's request signatures with it.
	// With Config.Apps set, an Alipay app without one is refused as Alipay
	// refuses an app with no key configured; without Config.Apps no
	// signature is checked.
	AlipayPublicKey *rsa.PublicKey
	// AlipayMode is which user id alipay.system.oauth.token gives an
	// Alipay app: AlipayModeUserID, AlipayModeOpenID or AlipayModeBoth;
	// "" is AlipayModeOpenID, what new Alipay apps get.
	AlipayMode string
	// AESKey is an Alipay app's content-encryption key (16 bytes, the
	// console's AES key decoded from base64): my.getPhoneNumber's answer
	// is encrypted with it. Without one the app gets no phone numbers.
	AESKey []byte
}

// Config configures an Emulator. The zero value is usable: any credentials,
// real clock, crypto randomness, no logging.
type Config struct {
	Apps      []App            // empty: accept any credentials
	OpenCodes bool             // --open-codes
	Now       func() time.Time // nil = time.Now
	Rand      io.Reader        // nil = crypto/rand.Reader
	Logger    *slog.Logger     // nil = discard

	// AlipayKey is the key Alipay's gateway signs its answers with; its
	// public half is what clients verify them with (AlipayPublicKey). nil
	// = a 2048-bit key generated when first needed.
	AlipayKey *rsa.PrivateKey
}

// Emulator is an http.Handler that stands in for the platforms' servers.
// Create it with New; it is safe for concurrent use.
type Emulator struct {
	now       func() time.Time
	log       *slog.Logger
	rand      io.Reader
	lockRand  bool // a caller's Reader may not be safe for concurrent use
	randMu    sync.Mutex
	openCodes bool

	apps      map[appKey]App // nil: accept any credentials
	tokenApps []App          // Baidu apps with a ThirdPartyToken, to attribute open codes
	routes    map[string]*route

	mu          sync.Mutex // guards codes and users
	codes       codeStore
	users       generations[idKey, userRecord] // who holds each openid, and their current session key
	usersPerGen int                            // usersPerGeneration; smaller in tests

	tokens tokenStore // platform access tokens issued

	alipayOnce sync.Once       // makes alipayKey when Config gave none
	alipayKey  *rsa.PrivateKey // use alipaySigner, never this field directly

	nFaults atomic.Int32 // len(faults), read without the lock on the hot path
	faultMu sync.Mutex
	faults  map[string]*faultState
}

type appKey struct{ platform, appid string }

// route is one platform path.
type route struct {
	platform string // whose error format fault answers use
	// envelope: a Baidu openapi business path, whose errors are an errno
	// envelope with HTTP 200 rather than OAuth's {"error",
	// "error_description"}.
	envelope envelope
	// oauth400: Baidu's /oauth/2.0/token, which sends OAuth's errors with
	// HTTP 400; the other Baidu paths send them with 200.
	oauth400 bool
	serve    func(*http.Request) reply
	calls    atomic.Int64
}

// reply is a complete platform answer, built before anything is written so
// that the slow_body and truncate faults can wrap it.
type reply struct {
	status      int
	contentType string
	body        []byte
}

// New returns an emulator for cfg. Apps whose platform is unknown are
// skipped with a warning; of two apps with the same platform and appid, the
// first wins.
func New(cfg Config) *Emulator {
	e := &Emulator{
		now:       cfg.Now,
		log:       cfg.Logger,
		rand:      cfg.Rand,
		lockRand:  cfg.Rand != nil,
		openCodes: cfg.OpenCodes,
		faults:    make(map[string]*faultState),

		usersPerGen: usersPerGeneration,
	}
	e.alipayKey = e.checkAlipayKey(cfg.AlipayKey)
	if e.now == nil {
		e.now = time.Now
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	e.codes.init(e.now())
	e.tokens.init()
	if len(cfg.Apps) > 0 {
		e.apps = make(map[appKey]App, len(cfg.Apps))
		for _, a := range cfg.Apps {
			p, ok := normalizePlatform(string(a.Family))
			if !ok {
				e.log.Warn("emulator: skipping app with unknown platform", "platform", a.Family, "appid", a.AppID)
				continue
			}
			a.Family = platform.Family(p)
			if p == alipay {
				a = e.checkAlipayApp(a)
			}
			k := appKey{p, a.AppID}
			if _, dup := e.apps[k]; dup {
				e.log.Warn("emulator: duplicate app, keeping the first", "platform", p, "appid", a.AppID)
				continue
			}
			e.apps[k] = a
			if p == baidu && a.ThirdPartyToken != "" {
				e.tokenApps = append(e.tokenApps, a)
			}
		}
	}
	// Every platform path the emulator serves. The business APIs check
	// access tokens with checkToken.
	e.routes = map[string]*route{
		"/sns/jscode2session":                 {platform: wechat, serve: e.snsCode2Session}, // and QQ's
		"/api/getToken":                       {platform: wechat, serve: e.qqToken},         // QQ's, in WeChat's format
		"/sns/component/jscode2session":       {platform: wechat, serve: e.wechatComponentCode2Session},
		"/cgi-bin/token":                      {platform: wechat, serve: e.wechatToken},
		"/cgi-bin/stable_token":               {platform: wechat, serve: e.wechatStableToken},
		"/wxa/checksession":                   {platform: wechat, serve: e.wechatCheckSession},
		"/wxa/resetusersessionkey":            {platform: wechat, serve: e.wechatResetSessionKey},
		"/wxa/business/getuserphonenumber":    {platform: wechat, serve: e.wechatPhoneNumber},
		"/oauth/jscode2sessionkey":            {platform: baidu, serve: e.baiduCode2SessionKey},
		"/nalogin/getSessionKeyByCode":        {platform: baidu, serve: e.baiduCode2SessionKey},
		"/rest/2.0/oauth/getsessionkeybycode": {platform: baidu, serve: e.baiduThirdPartySessionKey},
		"/rest/2.0/smartapp/getsessionkey":    {platform: baidu, serve: e.baiduTokenSessionKey, envelope: sessionEnvelope},
		"/oauth/2.0/token":                    {platform: baidu, serve: e.baiduToken, oauth400: true},
		"/rest/2.0/smartapp/getunionid":       {platform: baidu, serve: e.baiduUnionID, envelope: unionIDEnvelope},
		"/rest/2.0/smartapp/unionId/get":      {platform: baidu, serve: e.baiduThirdPartyUnionID, envelope: msgEnvelope},
		"/oauth2/mp/code2session":             {platform: kuaishou, serve: e.kuaishouCode2Session},
		"/oauth2/access_token":                {platform: kuaishou, serve: e.kuaishouToken},
		douyinPathCode2Session:                {platform: douyin, serve: e.douyinCode2Session},
		douyinPathToken:                       {platform: douyin, serve: e.douyinToken},
		douyinPathPhone:                       {platform: douyin, serve: e.douyinPhoneNumber},
		alipayPath:                            {platform: alipay, serve: e.alipayGateway},
	}
	return e
}

// normalizePlatform maps the configuration's platform names onto the wire
// formats the emulator speaks. A family it does not serve is no platform.
func normalizePlatform(p string) (string, bool) {
	switch f := platform.Flavor(p).Family(); f {
	case platform.FamilyWeChat, platform.FamilyBaidu, platform.FamilyDouyin, platform.FamilyQQ, platform.FamilyKuaishou,
		platform.FamilyAlipay:
		return string(f), true
	}
	return "", false
}

// ServeHTTP serves the platform paths and the control API under /_emulator/.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPrefix) || r.URL.Path == strings.TrimSuffix(controlPrefix, "/") {
		e.serveControl(w, r) // its own not_found for a path it lacks
		return
	}
	rt := e.routes[r.URL.Path]
	if rt == nil {
		writeReply(w, e.unknownPath(r.URL.Path))
		return
	}
	rt.calls.Add(1)
	if r.Body != nil { // nil only from hand-made requests; net/http always sets one
		r.Body = http.MaxBytesReader(w, r.Body, maxPlatformBody)
	}

	plan := e.planFaults(r.URL.Path)
	if plan.latency > 0 {
		if r.Body != nil {
			r.Body = readAhead(r.Body)
		}
		if !sleepCtx(r.Context(), plan.latency) {
			return // the client left: the platform never saw the request
		}
	}
	if f := plan.fault; f != nil && f.replacesAnswer() {
		e.writeFault(w, rt, f)
		return
	}
	e.writeAnswer(w, r, rt.serve(r), plan.fault)
}

// unknownPath answers a path the emulator does not serve as the platform
// whose path it looks like would, so that a client pointed at a wrong path
// reads an error it knows rather than Go's text 404: on Baidu's prefixes
// the openapi gateway's error_code 3 "Unsupported openapi method", Baidu's
// generic code for an API that does not exist; anywhere else WeChat's
// 40066 "invalid url", which WeChat answers a path it does not serve. Both
// with HTTP 200, as each platform sends its other errors of that shape.
func (e *Emulator) unknownPath(path string) reply {
	for _, prefix := range [...]string{"/oauth/", "/nalogin/", "/rest/"} {
		if strings.HasPrefix(path, prefix) {
			return baiduGateway(gatewayNoMethod)
		}
	}
	return e.wechatError(40066)
}

// Stats returns the number of requests per platform path, including those a
// fault answered. Every served path is listed, with 0 when never called.
func (e *Emulator) Stats() map[string]int64 {
	m := make(map[string]int64, len(e.routes))
	for p, rt := range e.routes {
		m[p] = rt.calls.Load()
	}
	return m
}

// paths returns the platform paths in a stable order, for messages.
func (e *Emulator) paths() []string {
	ps := make([]string, 0, len(e.routes))
	for p := range e.routes {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// app returns the configured app, and whether credentials are checked at all.
func (e *Emulator) app(platform, appid string) (a App, known, checked bool) {
	if e.apps == nil {
		return App{}, false, false
	}
	a, known = e.apps[appKey{platform, appid}]
	return a, known, true
}

// owner is the unionid scope of an app.
func (e *Emulator) owner(platform, appid string) string {
	a, _, _ := e.app(platform, appid)
	return a.Owner
}

// secretOK compares a configured secret with a presented one in constant
// time; an empty configured secret accepts anything.
func secretOK(want, got string) bool {
	return want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

func (e *Emulator) readRand(b []byte) error {
	if e.lockRand {
		e.randMu.Lock()
		defer e.randMu.Unlock()
	}
	_, err := io.ReadFull(e.rand, b)
	return err
}

// randFloat returns a uniform number in [0, 1).
func (e *Emulator) randFloat() float64 {
	var b [8]byte
	if e.readRand(b[:]) != nil {
		return 0 // a broken source makes rules fire rather than vanish
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53)
}

// rid imitates WeChat's request id: a hex timestamp and random hex.
func (e *Emulator) rid() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], uint32(e.now().Unix()))
	_ = e.readRand(b[4:]) // zeros are as good an id as any
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:16] + "-" + h[16:]
}

// readAhead reads a request body before a delay: net/http notices that the
// client went away (and cancels the request's context) only once the
// handler has read the body, and a delay must end with the client. The
// returned body gives the same bytes, then the same error.
func readAhead(body io.ReadCloser) io.ReadCloser {
	data, err := io.ReadAll(body)
	if err == nil {
		err = io.EOF
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(data), errReader{err}))
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// sleepCtx waits d, or less if ctx ends first; it reports whether d elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
