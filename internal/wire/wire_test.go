package wire_test

import (
	"encoding/json"
	"testing"

	"github.com/mplogin/mplogin/internal/wire"
)

func TestIntAcceptsNumberAndString(t *testing.T) {
	cases := map[string]int64{`40029`: 40029, `"40029"`: 40029, `" -1 "`: -1, `null`: 0, `""`: 0, `40029.0`: 40029, `-1`: -1}
	for in, want := range cases {
		var n wire.Int
		if err := json.Unmarshal([]byte(in), &n); err != nil || int64(n) != want {
			t.Errorf("%s: got %d, %v; want %d", in, n, err, want)
		}
	}
	for _, bad := range []string{`"abc"`, `true`, `{}`, `1.5`, `"1e400"`} {
		var n wire.Int
		if err := json.Unmarshal([]byte(bad), &n); err == nil {
			t.Errorf("%s: accepted as %d", bad, n)
		}
	}
}
