package userdata_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// checkResult is the property both decryptors share: no panic,
// and either valid JSON with a nil error or a nil result with exactly
// ErrDecrypt.
func checkResult(t *testing.T, out []byte, err error, object bool) {
	t.Helper()
	if err != nil {
		if err != userdata.ErrDecrypt || out != nil {
			t.Fatalf("failure is (%q, %v), want (nil, ErrDecrypt)", out, err)
		}
		return
	}
	if !json.Valid(out) || (object && (len(out) == 0 || out[0] != '{')) {
		t.Fatalf("success with %q", out)
	}
}

func FuzzDecryptWeChat(f *testing.F) {
	seeds := [][3]string{
		{wxSessionKey, wxData, wxIV},
		{wxSessionKey, strings.ReplaceAll(wxData, "+", " "), wxIV},
		{strings.TrimRight(wxSessionKey, "="), strings.TrimRight(wxData, "="), strings.TrimRight(wxIV, "=")},
		{wxSessionKey, wxData[:len(wxData)-4], wxIV},
		{wxSessionKey, wxData[:24], wxIV},
		{wxSessionKey, wxData + "=", wxIV},
		{wxSessionKey, wxData[:200] + "\n" + wxData[200:], wxIV},
		{wxSessionKey, mutate(wxData, xorAt(-1, 1)), wxIV},
		{wxSessionKey, mutate(wxData, xorAt(-17, 0x16)), wxIV},
		{wxSessionKey, mutate(wxData, xorAt(0, 1)), wxIV},
		{wxSessionKey, wxData, "AQ=="},
		{"AQ==", wxData, wxIV},
		{bdSessionKey, wxData, wxIV},
		{"", "", ""},
		{wxSessionKey, "====", wxIV},
		{wxSessionKey, encWX(wxKey(), `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1}}`), wxIV},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	opt := wxOpts()
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		out, err := userdata.DecryptWeChat(secret.New(key), data, iv, opt)
		checkResult(t, out, err, true)
	})
}

func FuzzDecryptBaidu(f *testing.F) {
	seeds := [][4]string{
		{bdSessionKey, bdData, bdIV, bdAppKey},
		{bdSessionKey, strings.ReplaceAll(bdData, "+", " "), bdIV, bdAppKey},
		{bdSessionKey, strings.TrimRight(bdData, "="), strings.TrimRight(bdIV, "="), bdAppKey},
		{bdSessionKey, bdData, bdIV, bdAppKey[:10]},
		{bdSessionKey, bdData, bdIV, ""},
		{bdSessionKey, bdData, bdIV, strings.Repeat("k", 200)},
		{bdSessionKey, bdData[:len(bdData)-4], bdIV, bdAppKey},
		{bdSessionKey, mutate(bdData, xorAt(-1, 1)), bdIV, bdAppKey},
		{bdSessionKey, mutate(bdData, xorAt(0, 1)), bdIV, bdAppKey},
		{bdSessionKey, rawBaidu(frame(0xffffffff, bdPlain, bdAppKey)), bdIV, bdAppKey},
		{bdSessionKey, rawBaidu(frame(0, "", bdAppKey)), bdIV, bdAppKey},
		{bdSessionKey, rawBaidu(frame(0x150, bdPlain, bdAppKey)), bdIV, bdAppKey},
		{wxSessionKey, bdData, bdIV, bdAppKey},
		{"", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, key, data, iv, appKey string) {
		out, err := userdata.DecryptBaidu(secret.New(key), data, iv, appKey)
		checkResult(t, out, err, false)
	})
}

// Whatever content and app key go in, EncryptBaidu and DecryptBaidu are
// inverses for valid JSON content, and everything else is ErrDecrypt.
func FuzzBaiduRoundTrip(f *testing.F) {
	f.Add([]byte(bdPlain), bdAppKey)
	f.Add([]byte(`{}`), "k")
	f.Add([]byte(``), bdAppKey)
	f.Add([]byte(`[1,2`), bdAppKey)
	f.Add(bytes.Repeat([]byte(" "), 300), "\x00")
	f.Fuzz(func(t *testing.T, content []byte, appKey string) {
		data, iv, err := userdata.EncryptBaidu(bdKey(), content, appKey, nil, nil)
		if err != nil {
			return // empty app key or over the cap
		}
		out, err := userdata.DecryptBaidu(bdKey(), data, iv, appKey)
		if json.Valid(content) {
			if err != nil || !bytes.Equal(out, content) {
				t.Fatalf("round trip: %q, %v", out, err)
			}
		} else if err != userdata.ErrDecrypt || out != nil {
			t.Fatalf("invalid content came back: %q, %v", out, err)
		}
	})
}
