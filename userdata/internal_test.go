package userdata

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestUnpad(t *testing.T) {
	body := []byte("0123456789abcdef0123456789abcdef0123456789abcdef")
	pad := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }
	tests := []struct {
		name    string
		in      []byte
		bs      int
		wantLen int
		wantOK  int
	}{
		{"pad 1", append(body[:15:15], 1), 16, 15, 1},
		{"pad 7", append(body[:9:9], pad(7, 7)...), 16, 9, 1},
		{"full block of 16", append(body[:16:16], pad(16, 16)...), 16, 16, 1},
		{"only padding", pad(16, 16), 16, 0, 1},
		{"pad 0", append(body[:15:15], 0), 16, 16, 0},
		{"pad 17 with block 16", append(body[:15:15], pad(17, 17)...), 16, 32, 0},
		{"first pad byte differs", append(append(body[:9:9], 6), pad(6, 7)...), 16, 16, 0},
		{"middle pad byte differs", append(append(append(body[:9:9], pad(3, 7)...), 8), pad(3, 7)...), 16, 16, 0},
		{"byte before the pad may be anything", append(append(body[:8:8], 7), pad(7, 7)...), 16, 9, 1},
		{"pad larger than input", pad(16, 17), 16, 16, 0},
		{"pad 255", append(body[:15:15], 255), 16, 16, 0},
		{"baidu pad 28", append(body[:4:4], pad(28, 28)...), 32, 4, 1},
		{"baidu pad 32", append(body[:32:32], pad(32, 32)...), 32, 32, 1},
		{"baidu pad 17", append(body[:15:15], pad(17, 17)...), 32, 15, 1},
		{"baidu pad 33", append(body[:15:15], pad(33, 33)...), 32, 48, 0},
		{"baidu pad 32 on 16 bytes", pad(16, 32), 32, 16, 0},
		{"baidu 31 of 32 equal", append(append(body[:32:32], 31), pad(31, 32)...), 32, 64, 0},
		{"one byte", []byte{1}, 16, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := unpad(tt.in, tt.bs)
			if n != tt.wantLen || ok != tt.wantOK {
				t.Fatalf("unpad = %d, %d; want %d, %d", n, ok, tt.wantLen, tt.wantOK)
			}
		})
	}
}

const testPlain = `{"openId":"o","watermark":{"timestamp":1477314187,"appid":"wx4f4bc4dec97d474b"}}`

func TestCheckWatermark(t *testing.T) {
	opt := WeChatOptions{AppID: "wx4f4bc4dec97d474b"}
	tests := []struct {
		name string
		pt   string
		want int
	}{
		{"plain", testPlain, 1},
		{"spaces everywhere", "{ \"openId\" : \"o\" ,\n\t\"watermark\" : { \"appid\" : \"wx4f4bc4dec97d474b\" , \"timestamp\" : 1 } }\n", 1},
		{"watermark first, nested values after", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1},"a":[{"b":"}]\"{"},[],{}],"c":null,"d":-1.5e3,"e":true}`, 1},
		{"extra watermark fields", `{"watermark":{"x":{"appid":"no"},"appid":"wx4f4bc4dec97d474b","timestamp":1,"y":[1]}}`, 1},
		{"leading space", " " + testPlain, 0},
		{"empty", "", 0},
		{"empty object", "{}", 0},
		{"invalid JSON", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1}`, 0},
		{"trailing data", testPlain + "{}", 0},
		{"watermark only nested", `{"a":{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1}}}`, 0},
		{"watermark only inside a string", `{"a":"\"watermark\":{\"appid\":\"wx4f4bc4dec97d474b\",\"timestamp\":1}"}`, 0},
		{"watermark twice", `{"watermark":{"appid":"x","timestamp":1},"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1}}`, 0},
		{"watermark in another case too", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1},"WaterMark":{"appid":"x","timestamp":1}}`, 0},
		{"watermark only in another case", `{"Watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1}}`, 0},
		{"watermark with a Kelvin sign too", "{\"watermark\":{\"appid\":\"wx4f4bc4dec97d474b\",\"timestamp\":1},\"watermar\u212a\":{}}", 0},
		{"escaped key", `{"w\u0061termark":{"appid":"x","timestamp":1},"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1}}`, 0},
		{"appid with escapes", `{"watermark":{"appid":"wx4f4bc4dec97d474\u0062","timestamp":1}}`, 0},
		{"appid twice", `{"watermark":{"appid":"wx4f4bc4dec97d474b","appid":"wx4f4bc4dec97d474b","timestamp":1}}`, 0},
		{"appid not a string", `{"watermark":{"appid":1,"timestamp":1}}`, 0},
		{"appid prefix", `{"watermark":{"appid":"wx4f4bc4dec97d474","timestamp":1}}`, 0},
		{"no timestamp", `{"watermark":{"appid":"wx4f4bc4dec97d474b"}}`, 0},
		{"negative timestamp", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":-1}}`, 0},
		{"fractional timestamp", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1.5}}`, 0},
		{"exponent timestamp", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1e9}}`, 0},
		{"string timestamp", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":"1"}}`, 0},
		{"huge timestamp", `{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1234567890123456789}}`, 0},
		{"watermark array", `{"watermark":[{"appid":"wx4f4bc4dec97d474b","timestamp":1}]}`, 0},
		{"watermark null", `{"watermark":null}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkWatermark([]byte(tt.pt), opt); got != tt.want {
				t.Fatalf("checkWatermark = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCheckWatermarkAge(t *testing.T) {
	const ts = 1477314187
	tests := []struct {
		name   string
		maxAge time.Duration
		now    int64
		want   int
	}{
		{"off", 0, ts + 10*365*86400, 1},
		{"fresh", time.Hour, ts + 60, 1},
		{"exactly MaxAge", time.Hour, ts + 3600, 1},
		{"one second over", time.Hour, ts + 3601, 0},
		{"5 minutes ahead", time.Hour, ts - 300, 1},
		{"over 5 minutes ahead", time.Hour, ts - 301, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := WeChatOptions{AppID: "wx4f4bc4dec97d474b", MaxAge: tt.maxAge, Now: func() time.Time { return time.Unix(tt.now, 0) }}
			if got := checkWatermark([]byte(testPlain), opt); got != tt.want {
				t.Fatalf("checkWatermark = %d, want %d", got, tt.want)
			}
		})
	}
}

// Differential: whatever the scanner accepts, encoding/json reads the same
// watermark from.
func FuzzCheckWatermark(f *testing.F) {
	for _, s := range []string{testPlain,
		`{"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1},"WaterMark":{"appid":"x","timestamp":1}}`,
		`{"a":"\"watermark\":{\"appid\":\"wx4f4bc4dec97d474b\",\"timestamp\":1}"}`,
		`{"w\u0061termark":{"appid":"x","timestamp":1},"watermark":{"appid":"wx4f4bc4dec97d474b","timestamp":1}}`,
		`{"watermark":{"x":{"appid":"no"},"appid":"wx4f4bc4dec97d474b","timestamp":1,"y":[1]}}`,
	} {
		f.Add([]byte(s))
	}
	opt := WeChatOptions{AppID: "wx4f4bc4dec97d474b"}
	f.Fuzz(func(t *testing.T, pt []byte) {
		if checkWatermark(pt, opt) != 1 {
			return
		}
		var doc struct {
			Watermark struct {
				AppID     string `json:"appid"`
				Timestamp int64  `json:"timestamp"`
			} `json:"watermark"`
		}
		if err := json.Unmarshal(pt, &doc); err != nil {
			t.Fatalf("accepted, but encoding/json says %v", err)
		}
		if doc.Watermark.AppID != opt.AppID {
			t.Fatalf("accepted, but encoding/json reads appid %q", doc.Watermark.AppID)
		}
		if ts, ok := parseUint(mustMember(t, mustMember(t, pt, "watermark"), "timestamp")); !ok || ts != doc.Watermark.Timestamp {
			t.Fatalf("timestamp %d, encoding/json reads %d", ts, doc.Watermark.Timestamp)
		}
	})
}

func mustMember(t *testing.T, obj []byte, key string) []byte {
	v, ok := member(obj, key)
	if !ok {
		t.Fatalf("member %q not found after acceptance", key)
	}
	return v
}
