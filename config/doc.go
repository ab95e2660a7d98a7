// Package config reads, checks and holds the configuration of the mplogin
// service: one YAML document, usually given as mplogin serve --config FILE.
//
// Load reads a file, Parse reads bytes; both expand environment variables,
// fill in defaults and call Validate. Default and Validate serve configurations
// built in code (the demo does that).
//
// # File format
//
//	listen: 127.0.0.1:8300             # host:port of the service; default 127.0.0.1:8300
//	store: sqlite:./mplogin.db         # required: sqlite:PATH, sqlite://PATH,
//	                                   #   postgres://user@host:5432/db or postgresql://…
//	sessions: redis://127.0.0.1:6379/0 # optional: redis:// or rediss:// URL; sessions, refresh
//	                                   #   tokens and code dedupe live there instead of in store
//	master_key: ${MPLOGIN_MASTER_KEY}  # required: base64 (standard, padded) of exactly 32 bytes;
//	                                   #   encrypts session keys at rest
//	old_master_keys: []                # optional: earlier master keys, same form, still
//	                                   #   accepted for decryption (key rotation)
//	log:
//	  level: info                      # debug | info | warn | error; default info
//	  format: json                     # json | text; default json
//	http:                              # Go durations, each more than 0
//	  read_header_timeout: 5s          # default 5s
//	  read_timeout: 10s                # default 10s
//	  write_timeout: 15s               # default 15s; must be longer than platform_timeout
//	  idle_timeout: 30s                # default 30s
//	  shutdown_timeout: 10s            # default 10s
//	  trusted_proxies: []              # IP addresses or CIDRs; X-Forwarded-For is honoured
//	                                   #   only from these peers; default none
//	  max_connections: 10000           # connections open at once; at the cap a new one closes
//	                                   #   the one idle longest; 0 = no cap; default 10000
//	  max_connections_per_ip: 256      # per client address (TCP peer); trusted proxies are
//	                                   #   exempt; 0 = no cap; default 256
//	  ipv6_prefix: 56                  # leading bits of an IPv6 address that name one client
//	                                   #   (rate limits, connection cap); 32 to 128; default 56
//	sessions_policy:
//	  access_ttl: 2h                   # access token lifetime; default 2h; more than 0
//	  refresh_ttl: 720h                # a refresh token unused this long expires; slides with
//	                                   #   each refresh; default 720h; more than 0
//	  max_age: 2160h                   # absolute session lifetime; 0 = none; default 2160h
//	  session_key_grace: 5m            # previous session key still tried this long; default 5m
//	  code_replay_window: 10s          # a repeat of a used login code gets a session this long
//	                                   #   after its exchange (3 at most); 0 = never; up to 5m
//	  max_sessions_per_identity: 20    # live sessions per identity; a login past it ends the
//	                                   #   oldest; 0 = no cap; default 20
//	  refresh_reuse_grace: 30s         # the refresh token a refresh just spent gets that
//	                                   #   refresh's tokens this long; 0 = never; up to 60s
//	platform_timeout: 5s               # deadline of one platform call, its one retry
//	                                   #   included; default 5s; more than 0
//	access_tokens:                     # optional; apps may override format, ttl, audience
//	  format: opaque                   # opaque | jwt; default opaque; jwt needs an audience
//	  ttl: 10m                         # JWT lifetime; default 10m (opaque tokens live
//	                                   #   sessions_policy.access_ttl)
//	  issuer: https://login.example.com # iss and metadata issuer: https (http only for
//	                                   #   127.0.0.1/localhost), no query, fragment or trailing
//	                                   #   slash; default http://<listen>; also the iss of
//	                                   #   introspection answers
//	  audience: [https://api.example.com] # aud of JWTs: one string or a list
//	  algorithm: ES256                 # ES256 | RS256 for new signing keys; default ES256
//	signing_key_rotation: 720h         # how long a JWT signing key signs; at least 24h;
//	                                   #   default 720h
//	clients:                           # optional: business clients that may introspect and
//	                                   #   revoke tokens (POST /v1/introspect, /v1/revoke)
//	  - id: orders                     # 1 to 64 of a-z 0-9 . _ -; unique
//	    secret: ${ORDERS_CLIENT_SECRET} # at least 16 characters
//	admin:                             # optional: the operators' API, off without it
//	  listen: 127.0.0.1:8301           # its own listener, apart from listen; keep it private
//	  tokens:                          # at least one
//	    - name: ops                    # named in the audit log: 1 to 64 of a-z 0-9 . _ -; unique
//	      token: ${MPLOGIN_ADMIN_TOKEN} # at least 32 characters
//	metrics:                           # optional: /metrics on a listener of its own, and
//	  listen: 127.0.0.1:9090           #   404 on listen; without it, /metrics is on listen
//	apps:                              # at least one
//	  - name: shop-wechat              # what clients send as "app": 1 to 64 of a-z 0-9 . _ -;
//	                                   #   unique
//	    platform: wechat               # wechat | wechat-component | baidu | baidu-legacy | baidu-tp
//	    appid: wx0123456789abcdef
//	    secret: ${SHOP_WECHAT_SECRET}
//	    endpoint: http://127.0.0.1:9300 # optional: platform base URL (the emulator), http or
//	                                   #   https, no query; for Baidu it stands for both hosts
//	    userdata_max_age: 24h          # WeChat only, optional: oldest decrypted payload
//	                                   #   accepted, by its watermark; 0 = off; default 24h
//	    expose_unionid: false          # any app, optional: tell business clients and gateways
//	                                   #   the user's unionid; default false
//	  - name: shop-wechat-tp
//	    platform: wechat-component     # a mini program run by a third-party platform
//	    appid: wx1123456789abcdef      # the authorizer mini program
//	    component_appid: wx2223456789abcdef
//	    component_token:               # exactly one of value and url
//	      value: ${COMPONENT_ACCESS_TOKEN}
//	      # url: https://owner.example/token  # GET answering {"access_token":"…","expires_in":N}
//	    # secret: optional here
//	  - name: shop-baidu
//	    platform: baidu                # baidu-legacy takes the same keys
//	    app_key: y2dTfnWfkx2OXttMEMWlGHoB1KzMogm7
//	    app_secret: ${SHOP_BAIDU_SECRET}
//	    unionid: true                  # Baidu only, optional: fetch the unionid at login
//	    login_api: spapi               # baidu only, optional: spapi (the default) or
//	                                   #   access_token: exchange codes on getsessionkey with
//	                                   #   the app's own access token instead of the secret
//	    access_tokens: {ttl: 5m}       # optional: this app's format, ttl and audience
//	  - name: shop-baidu-tp
//	    platform: baidu-tp
//	    app_key: z2dTfnWfkx2OXttMEMWlGHoB1KzMogm7
//	    authorizer_token: {url: https://owner.example/baidu-token}
//	    # app_secret, unionid: optional here
//
// Keys per platform (any other app key is an error; every app may also
// have expose_unionid):
//
//	wechat            name, platform, appid, secret; optional endpoint, userdata_max_age
//	wechat-component  name, platform, appid, component_appid, component_token;
//	                  optional secret, endpoint, userdata_max_age
//	baidu             name, platform, app_key, app_secret; optional endpoint, unionid,
//	                  login_api
//	baidu-legacy      name, platform, app_key, app_secret; optional endpoint, unionid
//	baidu-tp          name, platform, app_key, authorizer_token;
//	                  optional app_secret, endpoint, unionid
//
// # Rules
//
// Unknown keys are errors, as are keys given twice, values of the wrong
// shape, several YAML documents and an empty file. A key with an empty or
// null value counts as not given (its default applies). Durations are Go
// durations: 300ms, 5s, 10m, 24h, 1h30m.
//
// # Environment variables
//
// ${NAME} inside any value is replaced by the environment variable NAME
// (letters, digits and _, not starting with a digit); $$ gives a literal $.
// Nothing else is expanded: $NAME stays as written. Expansion happens after
// the YAML is parsed, so a value containing #, : or quotes cannot change the
// document's structure. An unset variable is an error naming the key; a set
// but empty one leaves the key not given. Keys are never expanded. Inside a
// flow collection ([…] or {…}) quote a reference, as in ["${OLD_KEY}"]:
// there { and } are YAML syntax.
//
// # Errors
//
// Every error is an *Error whose text is one line: "config: ", the line in
// the file when the key path alone does not place the problem, the key path,
// and the problem:
//
//	config: apps[1] (shop-baidu): app_secret: required
//	config: apps[0] (shop-wechat): secret: environment variable SHOP_WECHAT_SECRET is not set
//	config: master_key: must be base64 of 32 bytes (got 16)
//	config: apps[2]: name: duplicate "shop-wechat"
//	config: line 7: apps[0] (shop-wechat): unknown key "secert" (did you mean "secret"?)
//
// An error never repeats a configured value other than an app name, so that a
// secret put in the wrong place cannot reach a log through it.
package config
