package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/server"
	"golang.org/x/sync/errgroup"
)

// The demo's apps, as the README's walkthrough names them. Their secrets are not secret: the
// demo's own emulator is the only platform that knows them.
const (
	demoWeChatApp    = "demo-wechat"
	demoWeChatAppID  = "wxdemo0000000001"
	demoWeChatSecret = "demo-wechat-secret"
	demoBaiduApp     = "demo-baidu"
	demoBaiduAppKey  = "demobaiduappkey00000000000000001"
	demoBaiduSecret  = "demo-baidu-secret"
	demoDouyinApp    = "demo-douyin"
	demoDouyinAppID  = "ttdemo0000000001"
	demoDouyinSecret = "demo-douyin-secret"
	demoQQApp        = "demo-qq"
	demoQQAppID      = "1100000001"
	demoQQSecret     = "demo-qq-secret"
	demoKuaishouApp  = "demo-kuaishou"
	demoKuaishouID   = "ksdemo0000000001"
	demoKuaishouKey  = "demo-kuaishou-secret"
	demoAlipayApp    = "demo-alipay"
	demoAlipayAppID  = "2021000000000001"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("demo", stderr)
	listen := fset.String("listen", "127.0.0.1:8300", "address of the service")
	emuListen := fset.String("emulator-listen", "127.0.0.1:9300", "address of the emulator")
	data := fset.String("data", "./mplogin-data", "data directory (SQLite database and master key)")
	if err := parse(fset, args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := os.MkdirAll(*data, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	keyPath := filepath.Join(*data, "master.key")
	key, generated, err := demoMasterKey(keyPath)
	if err != nil {
		return err
	}
	rsaKey, err := keyFile(filepath.Join(*data, "douyin.pem"))
	if err != nil {
		return err
	}
	ali, err := demoAlipayKeys(*data)
	if err != nil {
		return err
	}
	// The demo uses what it finds; the store warns of its database file.
	warnIfShared(log, *data, "data directory")
	warnIfShared(log, keyPath, "master key")

	emuLn, err := net.Listen("tcp", *emuListen)
	if err != nil {
		return fmt.Errorf("emulator listen: %w", err)
	}
	defer emuLn.Close()
	svcLn, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer svcLn.Close()
	emuURL := "http://" + emuLn.Addr().String()
	svcURL := "http://" + svcLn.Addr().String()

	cfg := config.Default()
	cfg.Listen = svcLn.Addr().String()
	cfg.Store = "sqlite:" + filepath.Join(*data, "mplogin.db")
	cfg.MasterKey = key
	cfg.Apps = []config.App{
		{Name: demoWeChatApp, Flavor: platform.FlavorWeChat, AppID: demoWeChatAppID, Secret: secret.New(demoWeChatSecret),
			Endpoint: emuURL, UserdataMaxAge: config.DefaultUserdataMaxAge},
		{Name: demoBaiduApp, Flavor: platform.FlavorBaidu, AppKey: demoBaiduAppKey, AppSecret: secret.New(demoBaiduSecret),
			Endpoint: emuURL, UnionID: true},
		{Name: demoDouyinApp, Flavor: platform.FlavorDouyin, AppID: demoDouyinAppID, Secret: secret.New(demoDouyinSecret),
			RSAPrivateKey: rsaKey, Endpoint: emuURL, UserdataMaxAge: config.DefaultUserdataMaxAge},
		{Name: demoQQApp, Flavor: platform.FlavorQQ, AppID: demoQQAppID, Secret: secret.New(demoQQSecret),
			Endpoint: emuURL, UserdataMaxAge: config.DefaultUserdataMaxAge},
		{Name: demoKuaishouApp, Flavor: platform.FlavorKuaishou, AppID: demoKuaishouID, AppSecret: secret.New(demoKuaishouKey),
			Endpoint: emuURL},
		{Name: demoAlipayApp, Flavor: platform.FlavorAlipay, AppID: demoAlipayAppID, PrivateKey: ali.app,
			AlipayPublicKey: ali.gatewayPublic, AESKey: ali.aes, Endpoint: emuURL},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	srv, err := server.New(ctx, &cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	em := emulator.New(emulator.Config{Apps: emulatorApps(cfg.Apps), AlipayKey: ali.gateway, Logger: log})

	if generated {
		fmt.Fprintf(stdout, "Generated a master key into %s (it encrypts session keys at rest; keep it with the data).\n", filepath.Join(*data, "master.key"))
	}
	fmt.Fprint(stdout, walkthrough(svcURL, emuURL, *data))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.ServeHTTP(gctx, emulatorServer(em, log), emuLn, cfg.HTTP.ShutdownTimeout) })
	g.Go(func() error { return srv.Serve(gctx, svcLn) })
	return g.Wait()
}

// demoMasterKey reads the demo's master key, or makes one the first time.
func demoMasterKey(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(key) != config.MasterKeySize {
			return nil, false, fmt.Errorf("%s: not base64 of %d bytes", path, config.MasterKeySize)
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("master key: %w", err)
	}
	key := make([]byte, config.MasterKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, false, fmt.Errorf("master key: %w", err)
	}
	return key, true, nil
}

// demoKeys are the demo Alipay app's keys: its own, the emulated
// gateway's, and its AES key, all kept in the data directory.
type demoKeys struct {
	app           secret.String
	gateway       *rsa.PrivateKey
	gatewayPublic string // base64 PKIX, as Alipay's console shows it
	aes           secret.String
}

func demoAlipayKeys(data string) (demoKeys, error) {
	var k demoKeys
	var err error
	if k.app, err = keyFile(filepath.Join(data, "alipay-app.pem")); err != nil {
		return k, err
	}
	gw, err := keyFile(filepath.Join(data, "alipay-gateway.pem"))
	if err != nil {
		return k, err
	}
	if k.gateway, err = config.ParseRSAPrivateKey(gw); err != nil {
		return k, err
	}
	der, err := x509.MarshalPKIXPublicKey(&k.gateway.PublicKey)
	if err != nil {
		return k, err
	}
	k.gatewayPublic = base64.StdEncoding.EncodeToString(der)
	path := filepath.Join(data, "alipay-aes.key")
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		k.aes = secret.New(strings.TrimSpace(string(b)))
	case errors.Is(err, fs.ErrNotExist):
		raw := make([]byte, 16)
		if _, err := rand.Read(raw); err != nil {
			return k, err
		}
		s := base64.StdEncoding.EncodeToString(raw)
		if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
			return k, fmt.Errorf("alipay aes key: %w", err)
		}
		k.aes = secret.New(s)
	default:
		return k, fmt.Errorf("alipay aes key: %w", err)
	}
	return k, nil
}

// keyFile reads the RSA private key (PEM) at path, or makes one there the
// first time, readable by its owner alone: the demo's app keys, and the
// emulator's Alipay gateway key, stay the same across restarts.
func keyFile(path string) (secret.String, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k := secret.New(string(b))
		if _, err := config.ParseRSAPrivateKey(k); err != nil {
			return secret.String{}, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return secret.String{}, fmt.Errorf("key file: %w", err)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return secret.String{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return secret.String{}, err
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(path, p, 0o600); err != nil {
		return secret.String{}, fmt.Errorf("key file: %w", err)
	}
	return secret.New(string(p)), nil
}

// warnIfShared warns when group or others may read or write path: the
// master key opens every session key the database holds.
func warnIfShared(log *slog.Logger, path, what string) {
	if runtime.GOOS == "windows" {
		return // modes there do not say who may read a file
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o066 == 0 {
		return
	}
	log.Warn("demo: group or others may read or write the "+what+"; chmod go-rwx it",
		"path", path, "mode", fi.Mode().Perm().String())
}

// Markers around the commands, so a test can run exactly what is printed.
const (
	walkBegin = "# --- walkthrough: begin ---"
	walkEnd   = "# --- walkthrough: end ---"
)

func walkthrough(svc, emu, data string) string {
	r := strings.NewReplacer("{SVC}", svc, "{EMU}", emu, "{DATA}", data,
		"{WXAPP}", demoWeChatApp, "{WXID}", demoWeChatAppID, "{BDAPP}", demoBaiduApp, "{BDKEY}", demoBaiduAppKey,
		"{TTAPP}", demoDouyinApp, "{TTID}", demoDouyinAppID, "{QQAPP}", demoQQApp, "{QQID}", demoQQAppID,
		"{KSAPP}", demoKuaishouApp, "{KSID}", demoKuaishouID, "{ALIAPP}", demoAlipayApp, "{ALIID}", demoAlipayAppID,
		"{BEGIN}", walkBegin, "{END}", walkEnd)
	return r.Replace(`
mplogin demo is running
  service    {SVC}
  emulator   {EMU}   (stands in for every host)
  data       {DATA}   (SQLite; kept across restarts)
  apps       {WXAPP} (WeChat, appid {WXID}), {BDAPP} (Baidu, app_key {BDKEY}),
             {TTAPP} (Douyin, appid {TTID}), {QQAPP} (QQ, appid {QQID}),
             {KSAPP} (Kuaishou, app_id {KSID}), {ALIAPP} (Alipay, app_id {ALIID})

Try a login in another terminal; paste the lines one by one or all at once:

{BEGIN}
# 1. The mini program calls wx.login() for user alice and gets a one-time code.
CODE=$(curl -s -X POST {EMU}/_emulator/login -H 'Content-Type: application/json' \
  -d '{"platform":"wechat","appid":"{WXID}","user":"alice"}' | grep -o '"code":"[^"]*"' | cut -d'"' -f4)
echo "code: $CODE"

# 2. It sends the code to your back end, which logs in with mplogin.
LOGIN=$(curl -s -X POST {SVC}/v1/login -H 'Content-Type: application/json' \
  -d "{\"app\":\"{WXAPP}\",\"code\":\"$CODE\"}")
echo "$LOGIN"
ACCESS=$(echo "$LOGIN" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)
REFRESH=$(echo "$LOGIN" | grep -o '"refresh_token":"[^"]*"' | cut -d'"' -f4)

# 3. Your business API checks the access token.
curl -s {SVC}/v1/session -H "Authorization: Bearer $ACCESS"

# 4. When the access token expires, the client refreshes (both tokens rotate).
NEW=$(curl -s -X POST {SVC}/v1/token -H 'Content-Type: application/json' \
  -d "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"$REFRESH\"}")
echo "$NEW"
ACCESS=$(echo "$NEW" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)

# 5. The new access token works; ask WeChat too whether alice's session key is current.
curl -s "{SVC}/v1/session?verify=platform" -H "Authorization: Bearer $ACCESS"

# 6. The mini program gets alice's profile encrypted (wx.getUserInfo); only the
#    session key that mplogin keeps opens it.
curl -s -X POST {EMU}/_emulator/userdata -H 'Content-Type: application/json' \
  -d '{"platform":"wechat","appid":"{WXID}","user":"alice","kind":"userinfo"}' |
curl -s -X POST {SVC}/v1/userdata/decrypt -H "Authorization: Bearer $ACCESS" \
  -H 'Content-Type: application/json' --data-binary @-
echo

# 7. Her phone number, the preferred way: a one-time phone code that mplogin
#    resolves server to server with the app's access token.
PCODE=$(curl -s -X POST {EMU}/_emulator/phonecode -H 'Content-Type: application/json' \
  -d '{"appid":"{WXID}","user":"alice"}' | grep -o '"code":"[^"]*"' | cut -d'"' -f4)
curl -s -X POST {SVC}/v1/phone -H "Authorization: Bearer $ACCESS" \
  -H 'Content-Type: application/json' -d "{\"code\":\"$PCODE\"}"
echo

# 8. Or from an encrypted phone payload (older clients, and Baidu).
curl -s -X POST {EMU}/_emulator/userdata -H 'Content-Type: application/json' \
  -d '{"platform":"wechat","appid":"{WXID}","user":"alice","kind":"phone"}' |
curl -s -X POST {SVC}/v1/phone -H "Authorization: Bearer $ACCESS" \
  -H 'Content-Type: application/json' --data-binary @-
echo

# 9. Log out: every token of the session stops working at once.
curl -s -o /dev/null -w 'logout: HTTP %{http_code}\n' -X POST {SVC}/v1/logout -H "Authorization: Bearer $ACCESS"
curl -s {SVC}/v1/session -H "Authorization: Bearer $ACCESS"
echo

# 10. Douyin: bob is not logged in to Douyin, so tt.login gives only an
#     anonymous_code; it logs in an anonymous user.
ANON=$(curl -s -X POST {EMU}/_emulator/login -H 'Content-Type: application/json' \
  -d '{"platform":"douyin","appid":"{TTID}","user":"bob","anonymous":true}' | grep -o '"anonymous_code":"[^"]*"' | cut -d'"' -f4)
curl -s -X POST {SVC}/v1/login -H 'Content-Type: application/json' -d "{\"app\":\"{TTAPP}\",\"anonymous_code\":\"$ANON\"}"
echo

# 11. Bob logs in to Douyin: tt.login gives a code and an anonymous_code; sent
#     together, the anonymous user becomes bob (previous_user_id says which).
BOTH=$(curl -s -X POST {EMU}/_emulator/login -H 'Content-Type: application/json' \
  -d '{"platform":"douyin","appid":"{TTID}","user":"bob"}')
CODE=$(echo "$BOTH" | grep -o '"code":"[^"]*"' | cut -d'"' -f4)
ANON=$(echo "$BOTH" | grep -o '"anonymous_code":"[^"]*"' | cut -d'"' -f4)
curl -s -X POST {SVC}/v1/login -H 'Content-Type: application/json' \
  -d "{\"app\":\"{TTAPP}\",\"code\":\"$CODE\",\"anonymous_code\":\"$ANON\"}"
echo

# 12. QQ and Kuaishou log in the way WeChat does.
for HOST in "qq {QQID} {QQAPP}" "kuaishou {KSID} {KSAPP}"; do
  set -- $HOST
  CODE=$(curl -s -X POST {EMU}/_emulator/login -H 'Content-Type: application/json' \
    -d "{\"platform\":\"$1\",\"appid\":\"$2\",\"user\":\"alice\"}" | grep -o '"code":"[^"]*"' | cut -d'"' -f4)
  curl -s -X POST {SVC}/v1/login -H 'Content-Type: application/json' -d "{\"app\":\"$3\",\"code\":\"$CODE\"}"
  echo
done

# 13. Alipay: my.getAuthCode gives carol an auth code; mplogin trades it over
#     Alipay's signed gateway and checks the answer's signature.
CODE=$(curl -s -X POST {EMU}/_emulator/login -H 'Content-Type: application/json' \
  -d '{"platform":"alipay","appid":"{ALIID}","user":"carol"}' | grep -o '"code":"[^"]*"' | cut -d'"' -f4)
ALI=$(curl -s -X POST {SVC}/v1/login -H 'Content-Type: application/json' -d "{\"app\":\"{ALIAPP}\",\"code\":\"$CODE\"}")
echo "$ALI"
ACCESS=$(echo "$ALI" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)

# 14. Her phone number: what my.getPhoneNumber gives, signed by Alipay and
#     encrypted with the app's AES key, posted as it is.
curl -s -X POST {EMU}/_emulator/userdata -H 'Content-Type: application/json' \
  -d '{"platform":"alipay","appid":"{ALIID}","user":"carol","kind":"phone"}' |
curl -s -X POST {SVC}/v1/phone -H "Authorization: Bearer $ACCESS" \
  -H 'Content-Type: application/json' --data-binary @-
echo
{END}

Baidu works the same way: mint with {"platform":"baidu","appid":"{BDKEY}","user":"alice"}
and log in with {"app":"{BDAPP}","code":"…"}; {BDAPP} also fetches alice's unionid at
login (Baidu's getunionid), and a phone payload of kind "phone" decrypts the same way.
Douyin's phone codes come from /_emulator/phonecode with "platform":"douyin".
Stop with Ctrl-C.
`)
}
