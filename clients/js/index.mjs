// ES module entry: the same objects as the CommonJS one.
import client from './index.js'

export const { createClient, Client, MploginError, UserBlockedError, LoggedOutError, NetworkError, HostLoginError, adapters } = client
