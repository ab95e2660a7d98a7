// Package userdata decrypts and verifies the user data that mini programs
// hand to their server (user info, phone numbers), for WeChat (and the
// platforms that copied its scheme: QQ, Douyin) and for Baidu. It is a
// library of pure functions: no I/O, no state, no globals but ErrDecrypt.
//
// # WeChat
//
// DecryptWeChat implements docs/platforms/wechat.md, "Decrypting user data":
// key = base64(session_key), which
// must be 16 bytes (AES-128); iv = base64(iv), 16 bytes; the ciphertext is
// base64(encryptedData), a non-zero multiple of 16 bytes and at most
// MaxCiphertext. AES-128-CBC, then strict PKCS#7 with a 16-byte block. The
// plaintext must be a JSON object whose top-level watermark.appid equals
// WeChatOptions.AppID; with WeChatOptions.MaxAge set, watermark.timestamp
// must also be at most MaxAge old and at most 5 minutes in the future. The
// result is the plaintext JSON, watermark included.
//
// VerifyRawData checks the rawData signature, sha1(rawData + session_key) in
// hex. SessionSignature computes the checksession / resetusersessionkey
// signature, hex(HMAC-SHA256) keyed with the session_key string's own bytes
// (keying with the decoded 16 bytes is a known mistake; see
// docs/platforms/wechat.md, "Session-key signature").
//
// # Baidu
//
// DecryptBaidu implements docs/platforms/baidu.md, "Decrypting user data":
// key = base64(session_key), 24 bytes
// (AES-192; the 32-character key is not hex); iv 16 bytes; AES-192-CBC; PKCS#7
// with a 32-byte block (pad values 1..32); plaintext
//
//	random(16) || len(4, big-endian) || content(len) || app_key
//
// The whole 4-byte length is read (some public code reads only its low
// byte), the frame must account for the unpadded plaintext exactly, the
// trailer must equal the app key, and the content must be JSON; the content
// is returned. In CBC the iv only changes the first plaintext block, which
// here is the random prefix, so a wrong iv goes unnoticed: the length and the
// app key are what is checked. Use the client's iv anyway
// (docs/platforms/baidu.md, "Test vectors").
//
// # One error
//
// Every failure of DecryptWeChat and DecryptBaidu returns the same value,
// ErrDecrypt, with a nil result: bad base64, wrong key or iv length, empty,
// ragged or oversized ciphertext, bad padding, bad framing, wrong app id or
// app key, stale or future watermark, not JSON, a stale session key. CBC
// without a MAC is malleable, and any difference between "bad padding" and
// "bad JSON" is a padding oracle that lets a client holding a session
// decrypt and forge data under that session's key. The service must map
// ErrDecrypt to one response and cap the failures of a session key
// (docs/security.md, "Decrypting user data"); this package cannot do that
// for it.
//
// # Constant-time choices
//
//   - Lengths (of the base64 strings, key, iv, ciphertext, app key) are
//     public and checked first, with ordinary branches, before any cipher
//     call; nothing can make crypto/cipher panic.
//   - The padding check reads the pad byte n and then examines every one of
//     the last 16 (Baidu: 32) bytes, masking with crypto/subtle, with no
//     branch on their values.
//   - The padding verdict is not acted on at once. WeChat: the JSON and
//     watermark checks run in any case, on the whole buffer when the padding
//     was bad, and the verdicts are combined at the end, so a bad pad takes
//     about as long as bad JSON after a good pad with the same corruption
//     instead of answering early. Baidu: the framing and app-key checks run
//     in any case; the JSON check sees the content only when the length
//     field matched (otherwise an empty slice), and all verdicts are
//     combined at the end.
//   - The watermark appid is compared as SHA-256 digests with
//     subtle.ConstantTimeCompare, so neither its bytes nor its length leak.
//     The Baidu framing and trailer are checked with selects; the
//     trailer is compared with subtle.ConstantTimeCompare over a slice of
//     the app key's own (public) length.
//   - The rawData signature is decoded from hex and compared with
//     hmac.Equal.
//
// JSON validation itself (encoding/json.Valid) stops at the first bad byte;
// the position of that byte in garbage is not something the padding
// controls.
//
// # Input leniency
//
// Standard base64 with padding is expected. A '+' that a form or query
// decoder turned into a space is turned back in encryptedData and iv, the
// CR/LF that encoding/base64 skips are skipped, and a string whose length
// (without CR/LF) is not a multiple of 4 is decoded as unpadded base64.
//
// # Encryptors
//
// EncryptWeChat and EncryptBaidu are the exact inverses of the cipher layers
// (they reproduce the published vectors given the same iv and random
// prefix). They exist for the emulator and for tests; nil iv or random
// prefix means crypto/rand. Their errors are descriptive (they guard against
// programming mistakes, not against clients) and never contain key material.
package userdata
