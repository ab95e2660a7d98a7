package accesstoken

// OnWait makes m call f each time a caller starts waiting on a fetch.
func OnWait(m *Manager, f func(key string)) { m.onWait = f }
