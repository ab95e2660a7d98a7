package server_test

import (
	"testing"

	"github.com/mplogin/mplogin/config"
	"github.com/mplogin/mplogin/platform"
	"github.com/mplogin/mplogin/secret"
)

// A phone code belongs to the user who pressed the button: bob's session
// presenting alice's code gets invalid_code and no number, for a WeChat app
// and for a third-party platform's authorizer app alike; alice can still
// trade her code afterwards.
func TestPhoneCodeOfAnotherUser(t *testing.T) {
	const authAppID = "wxauthorizer00001"
	r := newRig(t, withApps(config.App{Name: "wc", Flavor: platform.FlavorWeChatComponent, AppID: authAppID,
		ComponentAppID: "wxcomponent000001", ComponentToken: &config.TokenSource{Value: secret.New("component-token")},
		Secret: secret.New("authorizer-secret")}))
	for _, app := range []struct{ name, appid string }{{"w", wxAppID}, {"wc", authAppID}} {
		t.Run(app.name, func(t *testing.T) {
			alice := r.login(t, "wechat", app.appid, app.name, "alice")
			bob := r.login(t, "wechat", app.appid, app.name, "bob")
			pc, err := r.em.PhoneCode(app.appid, "alice")
			if err != nil {
				t.Fatal(err)
			}
			status, v := r.call(t, "POST", "/v1/phone", bob.AccessToken, `{"code":"`+pc+`"}`)
			if status != 401 || v["error"] != "invalid_code" {
				t.Fatalf("bob with alice's phone code: %d %v, want 401 invalid_code", status, v)
			}
			bobID := bob.User.ID
			if _, _, ok, err := r.srv.Sessions().StoredPhone(t.Context(), bobID); ok || err != nil {
				t.Fatalf("a number was stored on bob: %v %v", ok, err)
			}
			status, v = r.call(t, "POST", "/v1/phone", alice.AccessToken, `{"code":"`+pc+`"}`)
			if status != 200 || v["phone_number"] != r.em.PhoneNumber("alice") {
				t.Fatalf("alice with her own code: %d %v", status, v)
			}
			if contains(r.logs.String(), r.em.PhoneNumber("alice")) {
				t.Fatal("the phone number is in the log")
			}
		})
	}
}
