package platform

// Family is a host as the namespace of its users: an openid or a unionid
// means something only within its family. Identities, unionid joins and
// session keys are per family; an app's flavor says which family it is in.
type Family string

// The families mplogin knows.
const (
	FamilyWeChat   Family = "wechat"
	FamilyBaidu    Family = "baidu"
	FamilyDouyin   Family = "douyin"   // Douyin (ByteDance) mini apps
	FamilyQQ       Family = "qq"       // QQ mini programs
	FamilyKuaishou Family = "kuaishou" // Kuaishou mini programs
	FamilyAlipay   Family = "alipay"   // Alipay mini programs
)

// Flavor is how mplogin talks to a host for one app: which API and which
// credentials. It is the value of an app's "platform" key in the
// configuration. Several flavors may share a family: a user who logs in
// to a WeChat app directly and through a third-party platform is one
// WeChat identity.
type Flavor string

// The flavors mplogin has a client for.
const (
	FlavorWeChat          Flavor = "wechat"           // an app's own appid and secret
	FlavorWeChatComponent Flavor = "wechat-component" // through a third-party platform
	FlavorBaidu           Flavor = "baidu"            // spapi, or the app's access token
	FlavorBaiduLegacy     Flavor = "baidu-legacy"     // the older openapi endpoint
	FlavorBaiduTP         Flavor = "baidu-tp"         // through a third-party platform
	FlavorDouyin          Flavor = "douyin"           // appid and secret, v2 API
	FlavorQQ              Flavor = "qq"               // appid and secret
	FlavorKuaishou        Flavor = "kuaishou"         // app_id and app_secret
	FlavorAlipay          Flavor = "alipay"           // the signed gateway
)

// Family returns the family of f, or "" for a flavor mplogin does not know.
func (f Flavor) Family() Family {
	switch f {
	case FlavorWeChat, FlavorWeChatComponent:
		return FamilyWeChat
	case FlavorBaidu, FlavorBaiduLegacy, FlavorBaiduTP:
		return FamilyBaidu
	case FlavorDouyin:
		return FamilyDouyin
	case FlavorQQ:
		return FamilyQQ
	case FlavorKuaishou:
		return FamilyKuaishou
	case FlavorAlipay:
		return FamilyAlipay
	}
	return ""
}
