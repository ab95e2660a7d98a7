package mplogin

import "time"

// MaxClockSkew is how far apart the clocks of instances sharing one store
// may be. Lifetimes one instance writes (tokens, sessions, exchanged codes,
// a previous session key, platform access tokens and their refresh leases,
// rate-limit buckets) are judged by whichever instance reads them, so each
// comparison of a time another instance wrote allows for this much: a
// client is never refused early because the instance it reaches runs
// ahead, and nothing is honoured more than MaxClockSkew past its end.
// Revocation is no comparison of times and is never delayed. Keep the
// hosts on NTP, which holds them milliseconds apart.
const MaxClockSkew = 30 * time.Second
