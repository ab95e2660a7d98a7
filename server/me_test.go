package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// A user reads their own account with GET /v1/me and deletes it with
// DELETE /v1/me: their tokens stop working, and a later login of the same
// platform identity is a new user.
func TestMeOnEveryStore(t *testing.T) {
	eachStore(t, func(t *testing.T, c storeCase) {
		r := newRig(t, withConfig(c.apply))
		user := fmt.Sprintf("me-%s-%d", c.name, os.Getpid())
		tok := r.login(t, "wechat", wxAppID, "w", user)
		status, body := r.call(t, "GET", "/v1/me", tok.AccessToken, "")
		var me struct {
			ID         string
			Identities []struct{ OpenID string }
		}
		if b, err := json.Marshal(body); err != nil || json.Unmarshal(b, &me) != nil {
			t.Fatalf("GET /v1/me: not a user: %v", body)
		}
		if status != 200 || me.ID != tok.User.ID || len(me.Identities) != 1 || me.Identities[0].OpenID != tok.User.OpenID {
			t.Fatalf("GET /v1/me: %d %v", status, body)
		}
		if status, body := r.call(t, "GET", "/v1/me", "", ""); status != 401 {
			t.Fatalf("GET /v1/me without a token: %d %v", status, body)
		}
		if status, body := r.call(t, "DELETE", "/v1/me", tok.AccessToken, ""); status != 204 {
			t.Fatalf("DELETE /v1/me: %d %v", status, body)
		}
		for _, path := range []string{"/v1/session", "/v1/me"} {
			if status, _ := r.call(t, "GET", path, tok.AccessToken, ""); status != 401 {
				t.Fatalf("GET %s after the deletion: %d, want 401", path, status)
			}
		}
		if status, _ := r.call(t, "POST", "/v1/token", "", `{"refresh_token":"`+tok.RefreshToken+`"}`); status != 400 && status != 401 {
			t.Fatalf("a refresh after the deletion: %d, want it refused", status)
		}
		again := r.login(t, "wechat", wxAppID, "w", user)
		if again.User.ID == tok.User.ID || again.User.Created == nil || !*again.User.Created {
			t.Fatalf("a login after the deletion: user %s (created %v), want a new user", again.User.ID, again.User.Created)
		}
	})
}
