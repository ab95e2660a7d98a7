package emulator_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mplogin/mplogin/emulator"
	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

func decode(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
}

// userDataVia mints user data through the control API or the Go helper.
type userDataVia func(v *env, platform, appid, user, kind string) emulator.UserData

func viaControl(v *env, platform, appid, user, kind string) emulator.UserData {
	v.t.Helper()
	r := v.sendJSON("POST", "/_emulator/userdata",
		fmt.Sprintf(`{"platform":%q,"appid":%q,"user":%q,"kind":%q}`, platform, appid, user, kind))
	if r.status != http.StatusOK || r.ctype != "application/json" {
		v.t.Fatalf("POST /_emulator/userdata: %d %q %s", r.status, r.ctype, r.body)
	}
	var d emulator.UserData
	dec := json.NewDecoder(strings.NewReader(string(r.body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		v.t.Fatalf("answer %s: %v", r.body, err)
	}
	return d
}

func viaGo(v *env, platform, appid, user, kind string) emulator.UserData {
	v.t.Helper()
	d, err := v.emu.UserData(platform, appid, user, kind)
	if err != nil {
		v.t.Fatalf("UserData: %v", err)
	}
	return d
}

func TestWeChatUserDataRoundTrip(t *testing.T) {
	for name, via := range map[string]userDataVia{"control": viaControl, "go": viaGo} {
		t.Run(name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: []emulator.App{
				{Family: "wechat", AppID: "wxacme", Owner: "acme"},
			}})
			wantWeChatSession(t, v.get(wxPath, wxQuery("wxacme", "s", v.login("wechat", "wxacme", "alice"))))
			key, ok := v.emu.SessionKey("wechat", "wxacme", "alice")
			if !ok {
				t.Fatal("no session key after the exchange")
			}
			v.clock.Advance(time.Minute)
			now := v.clock.Now().Unix()

			// User info: openId, unionId, profile and watermark; rawData signed.
			d := via(v, "wechat", "wxacme", "alice", "userinfo")
			plain, err := userdata.DecryptWeChat(secret.New(key), d.EncryptedData, d.IV, userdata.WeChatOptions{AppID: "wxacme"})
			if err != nil {
				t.Fatalf("DecryptWeChat: %v", err)
			}
			var info struct {
				OpenID    string `json:"openId"`
				NickName  string `json:"nickName"`
				Gender    int    `json:"gender"`
				Language  string `json:"language"`
				City      string `json:"city"`
				Province  string `json:"province"`
				Country   string `json:"country"`
				AvatarURL string `json:"avatarUrl"`
				UnionID   string `json:"unionId"`
				Watermark struct {
					Timestamp int64  `json:"timestamp"`
					AppID     string `json:"appid"`
				} `json:"watermark"`
			}
			decode(t, plain, &info)
			if info.OpenID != v.emu.OpenID("wechat", "wxacme", "alice") || info.UnionID != v.emu.UnionID("wechat", "wxacme", "alice") {
				t.Errorf("openId %q, unionId %q: want OpenID's and UnionID's", info.OpenID, info.UnionID)
			}
			if info.NickName != "alice" || (info.Gender != 1 && info.Gender != 2) || info.City == "" || info.Province == "" ||
				info.Country != "CN" || info.Language != "zh_CN" || !strings.HasPrefix(info.AvatarURL, "https://") {
				t.Errorf("profile %s", plain)
			}
			if info.Watermark.AppID != "wxacme" || info.Watermark.Timestamp != now {
				t.Errorf("watermark %+v, want wxacme at %d", info.Watermark, now)
			}
			if !userdata.VerifyRawData(secret.New(key), d.RawData, d.Signature) {
				t.Errorf("rawData %s does not verify with signature %s", d.RawData, d.Signature)
			}
			var raw map[string]any
			decode(t, []byte(d.RawData), &raw)
			if len(raw) != 7 || raw["nickName"] != "alice" || raw["avatarUrl"] != info.AvatarURL || raw["openId"] != nil {
				t.Errorf("rawData %s: want the 7 public profile fields, matching the encrypted ones", d.RawData)
			}

			// Phone: the number, countryCode a string, watermark; no rawData.
			d = via(v, "wechat", "wxacme", "alice", "phone")
			if d.RawData != "" || d.Signature != "" {
				t.Errorf("phone data carries rawData %q / signature %q", d.RawData, d.Signature)
			}
			plain, err = userdata.DecryptWeChat(secret.New(key), d.EncryptedData, d.IV, userdata.WeChatOptions{AppID: "wxacme"})
			if err != nil {
				t.Fatalf("DecryptWeChat: %v", err)
			}
			var phone map[string]any
			decode(t, plain, &phone)
			n := v.emu.PhoneNumber("alice")
			if phone["phoneNumber"] != n || phone["purePhoneNumber"] != n || phone["countryCode"] != "86" || phone["watermark"] == nil {
				t.Errorf("phone plaintext %s", plain)
			}

			// Another app's appid does not pass the watermark check.
			if _, err := userdata.DecryptWeChat(secret.New(key), d.EncryptedData, d.IV, userdata.WeChatOptions{AppID: "wxother"}); err == nil {
				t.Error("decrypted with another appid")
			}
		})
	}
}

func TestBaiduUserDataRoundTrip(t *testing.T) {
	for name, via := range map[string]userDataVia{"control": viaControl, "go": viaGo} {
		t.Run(name, func(t *testing.T) {
			v := newEnv(t, emulator.Config{Apps: testApps()})
			_, key := wantBaiduSession(t, v.postForm(bdPath, bdForm("bdkey1", "bdsecret1", v.login("baidu", "bdkey1", "alice"))))
			if cur, _ := v.emu.SessionKey("baidu", "bdkey1", "alice"); cur != key {
				t.Fatalf("SessionKey %q, exchanged %q", cur, key)
			}

			d := via(v, "baidu", "bdkey1", "alice", "userinfo")
			if d.RawData != "" || d.Signature != "" {
				t.Errorf("Baidu data carries rawData %q / signature %q", d.RawData, d.Signature)
			}
			plain, err := userdata.DecryptBaidu(secret.New(key), d.EncryptedData, d.IV, "bdkey1")
			if err != nil {
				t.Fatalf("DecryptBaidu: %v", err)
			}
			var info map[string]any
			decode(t, plain, &info)
			avatar, _ := info["headimgurl"].(string) // "" if missing or not a string, which the prefix check fails
			if len(info) != 4 || info["openid"] != v.emu.OpenID("baidu", "bdkey1", "alice") || info["nickname"] != "alice" ||
				(info["sex"] != float64(1) && info["sex"] != float64(2)) || !strings.HasPrefix(avatar, "https://") {
				t.Errorf("user info %s", plain)
			}

			d = via(v, "baidu", "bdkey1", "alice", "phone")
			plain, err = userdata.DecryptBaidu(secret.New(key), d.EncryptedData, d.IV, "bdkey1")
			if err != nil {
				t.Fatalf("DecryptBaidu: %v", err)
			}
			if want := `{"mobile":"` + v.emu.PhoneNumber("alice") + `"}`; string(plain) != want {
				t.Errorf("phone plaintext %s, want %s", plain, want)
			}

			// The app key trailer binds the data to the app.
			if _, err := userdata.DecryptBaidu(secret.New(key), d.EncryptedData, d.IV, "bdkey2"); err == nil {
				t.Error("decrypted with another app key")
			}
		})
	}
}

// Data is encrypted with the key the user holds now: a new login or a reset
// changes it.
func TestUserDataFollowsCurrentKey(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	openid, k1 := v.wxSession("wxapp1", "alice")
	decrypts := func(key string, d emulator.UserData) bool {
		_, err := userdata.DecryptWeChat(secret.New(key), d.EncryptedData, d.IV, userdata.WeChatOptions{AppID: "wxapp1"})
		return err == nil
	}
	if d := viaGo(v, "wechat", "wxapp1", "alice", "userinfo"); !decrypts(k1, d) {
		t.Fatal("not encrypted with the exchanged key")
	}

	r := v.get(wxResetPath, signedQuery(v.wxToken("wxapp1"), openid, sig(k1)))
	wantWeChatOK(t, r)
	k2 := r.str(t, "session_key")
	d := viaControl(v, "wechat", "wxapp1", "alice", "userinfo")
	if decrypts(k1, d) || !decrypts(k2, d) {
		t.Fatal("after a reset, user data must be encrypted with the new key only")
	}
	if userdata.VerifyRawData(secret.New(k1), d.RawData, d.Signature) || !userdata.VerifyRawData(secret.New(k2), d.RawData, d.Signature) {
		t.Fatal("after a reset, rawData must be signed with the new key only")
	}

	_, k3 := v.wxSession("wxapp1", "alice")
	if d := viaGo(v, "wechat", "wxapp1", "alice", "phone"); decrypts(k2, d) || !decrypts(k3, d) {
		t.Fatal("after a new login, user data must be encrypted with its key")
	}

	// A key given at login is used as well (Baidu here).
	given := "1df09d0a1677dd72b8325aec59576e0c"
	code, err := v.emu.Login("baidu", "bdkey2", "bob", given)
	if err != nil {
		t.Fatal(err)
	}
	wantBaiduSession(t, v.postForm(bdPath, bdForm("bdkey2", "bdsecret2", code)))
	bd := viaGo(v, "baidu", "bdkey2", "bob", "phone")
	if _, err := userdata.DecryptBaidu(secret.New(given), bd.EncryptedData, bd.IV, "bdkey2"); err != nil {
		t.Fatalf("not encrypted with the given key: %v", err)
	}
}

func TestUserDataErrors(t *testing.T) {
	v := newEnv(t, emulator.Config{Apps: testApps()})
	v.wxSession("wxapp1", "alice")
	tests := []struct {
		name                        string
		platform, appid, user, kind string
		noSession                   bool
	}{
		{"never logged in", "wechat", "wxapp1", "bob", "userinfo", true},
		{"logged in to another app", "wechat", "wxapp2", "alice", "userinfo", true},
		{"logged in on another platform", "baidu", "bdkey1", "alice", "phone", true},
		{"unknown kind", "wechat", "wxapp1", "alice", "email", false},
		{"unknown platform", "douyin", "wxapp1", "alice", "phone", false},
		{"unknown app", "wechat", "wxnope", "alice", "phone", false},
		{"user missing", "wechat", "wxapp1", "", "phone", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.emu.UserData(tt.platform, tt.appid, tt.user, tt.kind)
			if err == nil {
				t.Fatal("UserData succeeded")
			}
			if errors.Is(err, emulator.ErrNoSession) != tt.noSession {
				t.Errorf("error %v: errors.Is(ErrNoSession) = %v, want %v", err, !tt.noSession, tt.noSession)
			}
			r := v.sendJSON("POST", "/_emulator/userdata",
				fmt.Sprintf(`{"platform":%q,"appid":%q,"user":%q,"kind":%q}`, tt.platform, tt.appid, tt.user, tt.kind))
			want := http.StatusBadRequest
			if tt.noSession {
				want = http.StatusConflict
			}
			if r.status != want || r.str(t, "message") == "" {
				t.Errorf("control API: %d %s, want %d with a message", r.status, r.body, want)
			}
		})
	}
}

// The emulator's random source gives the iv (and Baidu's random prefix), so
// a deterministic source gives deterministic data.
func TestUserDataUsesConfigRand(t *testing.T) {
	mint := func(platform, appid string) emulator.UserData {
		v := newEnv(t, emulator.Config{Rand: &counter{}})
		code := v.login(platform, appid, "alice")
		if platform == "wechat" {
			wantWeChatSession(t, v.get(wxPath, wxQuery(appid, "s", code)))
		} else {
			wantBaiduSession(t, v.postForm(bdPath, bdForm(appid, "s", code)))
		}
		return viaGo(v, platform, appid, "alice", "userinfo")
	}
	for _, app := range [][2]string{{"wechat", "wxapp1"}, {"baidu", "bdkey1"}} {
		if a, b := mint(app[0], app[1]), mint(app[0], app[1]); a != b {
			t.Errorf("%s: %+v and %+v differ", app[0], a, b)
		}
	}
}

// counter is a deterministic random source.
type counter struct {
	mu sync.Mutex
	n  byte
}

func (c *counter) Read(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range b {
		c.n++
		b[i] = c.n
	}
	return len(b), nil
}
