// Package mplogin holds what every part of the login service shares: the
// closed set of errors a client can see (Code, Error) and the clock skew
// allowed between instances (MaxClockSkew).
//
// # How a login flows through the packages
//
// A mini program gets a single-use code from its host and sends it to
// POST /v1/login. Package httpapi reads the request (strict JSON, a body
// limit, the client's address through trusted proxies) and applies the
// route's rate limits (ratelimit). It then calls session.Service.Login:
//
//   - session hashes the code and looks for it among the codes already
//     exchanged (store); a repeat within the replay window gets a session
//     of the same user without a platform call;
//   - otherwise it exchanges the code through the app's platform.Client
//     (platform/wechat, platform/baidu, platform/douyin, platform/qq,
//     platform/kuaishou), behind a circuit breaker per
//     endpoint (breaker), for an openid, a session key and maybe a unionid;
//   - it seals the session key with the master key (keyring), mints an
//     access and a refresh token (token), and writes the identity, the code
//     and the session with one store.Store.WriteLogin (one transaction on
//     memory, SQLite and PostgreSQL; with sessions in Redis, store.Split
//     writes the identity first, then the code and the session at once);
//   - httpapi answers with the tokens. Only their hashes are stored.
//
// Later requests carry the access token: GET /v1/session checks it,
// POST /v1/token rotates the pair, POST /v1/logout revokes. User data the
// mini program got encrypted is opened with the sealed session key
// (session, userdata); phone codes and unionids need the app's own
// platform access token (accesstoken). Secrets travel as secret.String,
// which never prints. Package config reads the configuration, server wires
// everything from it, and cmd/mplogin is the binary (serve, emulate, demo).
// The emulator package stands in for the hosts, clients/js is the mini
// program's half, and verify is the business backend's: a middleware that
// checks the tokens without importing the rest. The documents under docs/ say what each part
// promises.
package mplogin
