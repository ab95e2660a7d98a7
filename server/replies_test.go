package server_test

import (
	"encoding/json"
	"testing"
)

// tokenReply is the body of a 200 answer to POST /v1/login or /v1/token.
type tokenReply struct {
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token"`
	User         replyUser `json:"user"`
}

type replyUser struct {
	ID      string `json:"id"`
	OpenID  string `json:"openid"`
	UnionID string `json:"unionid"`
	Created *bool  `json:"created"` // a pointer, to tell a missing "created" from false
}

// tokensOf reads v, a body as rig.call and callBase return it, as a token
// answer. A field that is missing or of another type fails the test with
// the body, where a type assertion on the map would panic.
func tokensOf(t *testing.T, v map[string]any) tokenReply {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var r tokenReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("not a token answer (%v): %s", err, b)
	}
	if r.AccessToken == "" || r.RefreshToken == "" || r.User.ID == "" || r.User.OpenID == "" || r.User.Created == nil {
		t.Fatalf("a token answer lacks a token, the user's id or openid, or created: %s", b)
	}
	return r
}
