package userdata_test

import (
	"encoding/json"
	"fmt"

	"github.com/mplogin/mplogin/secret"
	"github.com/mplogin/mplogin/userdata"
)

// Decrypting the published WeChat vector. The session key comes from the
// server's own store (never from the client); encryptedData and iv come from
// the mini program. The vector is from 2016, so MaxAge is left at 0 here; a
// service sets it (for example 24h).
func Example() {
	sessionKey := secret.New("tiihtNczf5v6AKRyjwEUhQ==")
	encryptedData := "CiyLU1Aw2KjvrjMdj8YKliAjtP4gsMZMQmRzooG2xrDcvSnxIMXFufNstNGTyaGS9uT5geRa0W4oTOb1WT7fJlAC+oNPdbB+3hVbJSRgv+4lGOETKUQz6OYStslQ142dNCuabNPGBzlooOmB231qMM85d2/fV6ChevvXvQP8Hkue1poOFtnEtpyxVLW1zAo6/1Xx1COxFvrc2d7UL/lmHInNlxuacJXwu0fjpXfz/YqYzBIBzD6WUfTIF9GRHpOn/Hz7saL8xz+W//FRAUid1OksQaQx4CMs8LOddcQhULW4ucetDf96JcR3g0gfRK4PC7E/r7Z6xNrXd2UIeorGj5Ef7b1pJAYB6Y5anaHqZ9J6nKEBvB4DnNLIVWSgARns/8wR2SiRS7MNACwTyrGvt9ts8p12PKFdlqYTopNHR1Vf7XjfhQlVsAJdNiKdYmYVoKlaRv85IfVunYzO0IKXsyl7JCUjCpoG20f0a04COwfneQAGGwd5oa+T8yO5hzuyDb/XcxxmK01EpqOyuxINew=="
	iv := "r7BXXKkLb8qrSNn05n0qiA=="

	plain, err := userdata.DecryptWeChat(sessionKey, encryptedData, iv, userdata.WeChatOptions{AppID: "wx4f4bc4dec97d474b"})
	if err != nil {
		// Always the same error, whatever went wrong: answer the client
		// with one fixed message, count the failure against the session.
		fmt.Println(err)
		return
	}
	var user struct {
		OpenID   string `json:"openId"`
		NickName string `json:"nickName"`
		UnionID  string `json:"unionId"`
	}
	if err := json.Unmarshal(plain, &user); err != nil {
		panic(err)
	}
	fmt.Println(user.OpenID, user.NickName, user.UnionID)

	// The same data against another app fails, with the same error as a
	// bad padding or a wrong key would.
	_, err = userdata.DecryptWeChat(sessionKey, encryptedData, iv, userdata.WeChatOptions{AppID: "wx0123456789abcdef"})
	fmt.Println(err)
	// Output:
	// oGZUI0egBJY1zhBYw2KhdUfwVJJE Band ocMvos6NjeKLIBqg5Mr9QjxrP1FA
	// userdata: cannot decrypt or verify
}
