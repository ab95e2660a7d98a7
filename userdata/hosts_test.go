package userdata_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

const (
	ttAppID = "tt07e3715e98c9aac0"
	ttPhone = `{"phoneNumber":"13800138000","purePhoneNumber":"13800138000","countryCode":"86","watermark":{"appid":%q,"timestamp":%d}}`
)

func seal(t *testing.T, key secret.String, plain string) (string, string) {
	t.Helper()
	data, iv, err := userdata.EncryptWeChat(key, []byte(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	return data, iv
}

// TestDecryptDouyin: a phone number with the app's fresh watermark opens,
// a profile without a watermark opens, and a watermark of another app, a
// stale one, or an ambiguous one does not.
func TestDecryptDouyin(t *testing.T) {
	key := randKey(t, 16)
	now := time.Now()
	opt := userdata.WeChatOptions{AppID: ttAppID, MaxAge: time.Hour, Now: func() time.Time { return now }}
	for _, tt := range []struct {
		name, plain string
		ok          bool
	}{
		{"phone", fmt.Sprintf(ttPhone, ttAppID, now.Unix()), true},
		{"profile without watermark", `{"nickName":"ann","avatarUrl":"https://x/y.png","gender":1}`, true},
		{"profile whose text says watermark", `{"nickName":"watermark"}`, true},
		{"other app", fmt.Sprintf(ttPhone, "tt0000000000000000", now.Unix()), false},
		{"stale", fmt.Sprintf(ttPhone, ttAppID, now.Add(-2*time.Hour).Unix()), false},
		{"watermark not an object", `{"nickName":"ann","watermark":1}`, false},
		{"watermark in two spellings", fmt.Sprintf(`{"Watermark":{},"watermark":{"appid":%q,"timestamp":%d}}`, ttAppID, now.Unix()), false},
		{"escaped watermark key", `{"water\u006dark":{"appid":"tt0000000000000000","timestamp":1}}`, false},
		{"not an object", `["a"]`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, iv := seal(t, key, tt.plain)
			got, err := userdata.DecryptDouyin(key, data, iv, opt)
			if tt.ok != (err == nil) {
				t.Fatalf("DecryptDouyin = %q, %v; want ok %v", got, err, tt.ok)
			}
			if tt.ok && string(got) != tt.plain {
				t.Fatalf("DecryptDouyin = %q, want %q", got, tt.plain)
			}
			if !tt.ok && (err != userdata.ErrDecrypt || got != nil) {
				t.Fatalf("failure is (%q, %v), want (nil, ErrDecrypt)", got, err)
			}
		})
	}
	// WeChat's rules stay: a payload without a watermark is refused there.
	data, iv := seal(t, key, `{"nickName":"ann"}`)
	if _, err := userdata.DecryptWeChat(key, data, iv, opt); err != userdata.ErrDecrypt {
		t.Fatalf("DecryptWeChat without a watermark: %v", err)
	}
}

// TestDecryptKuaishou: any JSON object under the session key opens; a
// wrong key, bad padding or a non-object does not.
func TestDecryptKuaishou(t *testing.T) {
	key := randKey(t, 16)
	plain := `{"nickName":"ann","avatarUrl":"https://x/y.png","gender":"M"}`
	data, iv := seal(t, key, plain)
	if got, err := userdata.DecryptKuaishou(key, data, iv); err != nil || string(got) != plain {
		t.Fatalf("DecryptKuaishou = %q, %v", got, err)
	}
	if _, err := userdata.DecryptKuaishou(randKey(t, 16), data, iv); err != userdata.ErrDecrypt {
		t.Fatalf("another key: %v", err)
	}
	if _, err := userdata.DecryptKuaishou(randKey(t, 24), data, iv); err != userdata.ErrDecrypt {
		t.Fatalf("a Baidu-sized key: %v", err)
	}
	for _, bad := range []string{`["a"]`, `"s"`, `{"a":`} {
		d, v := seal(t, key, bad)
		if got, err := userdata.DecryptKuaishou(key, d, v); err != userdata.ErrDecrypt || got != nil {
			t.Fatalf("DecryptKuaishou(%q) = %q, %v", bad, got, err)
		}
	}
	if _, err := userdata.DecryptKuaishou(key, strings.Replace(data, data[len(data)-4:], "AAA=", 1), iv); err != userdata.ErrDecrypt {
		t.Fatalf("a changed last block: %v", err)
	}
}

func FuzzDecryptDouyin(f *testing.F) {
	f.Add(wxSessionKey, wxData, wxIV)
	f.Add(wxSessionKey, encWX(wxKey(), `{"nickName":"x"}`), wxIV)
	f.Add(wxSessionKey, encWX(wxKey(), `{"watermark":{"appid":"`+ttAppID+`","timestamp":1}}`), wxIV)
	f.Add("", "", "")
	opt := userdata.WeChatOptions{AppID: ttAppID}
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		out, err := userdata.DecryptDouyin(secret.New(key), data, iv, opt)
		checkResult(t, out, err, true)
	})
}

func FuzzDecryptKuaishou(f *testing.F) {
	f.Add(wxSessionKey, wxData, wxIV)
	f.Add(wxSessionKey, encWX(wxKey(), `{"nickName":"x"}`), wxIV)
	f.Add(wxSessionKey, encWX(wxKey(), `[1]`), wxIV)
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		out, err := userdata.DecryptKuaishou(secret.New(key), data, iv)
		checkResult(t, out, err, true)
	})
}
