'use strict'

/**
 * An error from mplogin or from talking to it.
 *
 * `code` is mplogin's error code (`invalid_code`, `invalid_grant`, `rate_limited`,
 * `platform_unavailable`, …) or one of the client's own (`network_error`,
 * `logged_out`, `host_login_failed`, `invalid_response`). `status` is the HTTP
 * status (0 when there was no answer). `retryAfter` is the answer's Retry-After in
 * seconds, when it had one.
 */
class MploginError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{status?: number, retryAfter?: number, requestId?: string, cause?: unknown}} [info]
   */
  constructor(code, message, info) {
    super(message)
    // Keeps instanceof working where classes are compiled down to ES5.
    Object.setPrototypeOf(this, new.target.prototype)
    info = info || {}
    this.name = new.target.name
    this.code = code
    this.status = info.status || 0
    if (info.retryAfter !== undefined) this.retryAfter = info.retryAfter
    if (info.requestId) this.requestId = info.requestId
    if (info.cause !== undefined) this.cause = info.cause
  }
}

/** mplogin answered 403 `user_blocked`: the platform blocks this user. */
class UserBlockedError extends MploginError {}

/**
 * The session ended (revoked, expired, or never started) and the client could not,
 * or was not allowed to, log in again. `cause` holds the underlying error, if any.
 */
class LoggedOutError extends MploginError {}

/** The request got no answer (the host's request failed). Tokens are kept. */
class NetworkError extends MploginError {}

/** The host's own login (wx.login, my.getAuthCode, …) failed or gave no code. */
class HostLoginError extends MploginError {}

module.exports = { MploginError, UserBlockedError, LoggedOutError, NetworkError, HostLoginError }
