package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/mplogin/mplogin/store"
	"github.com/mplogin/mplogin/token"
)

// changeLog is the memory side of the table session_changes, which
// triggers fill on every write that changes what a session check answers
// (migrations/0013_session_changes.sql). With it, Unchanged answers for a
// sealed access token without a read: the session of a token minted after
// the log began has not changed since, unless the log holds a change for
// it, and a change that only installed this very token (a refresh) is no
// change to it.
//
// The memory side follows the table exactly: the writer reads the changes
// its transaction made (by seq, which only grows) before committing, and
// applies them after the commit, before any of the batch's callers is
// answered. A change is kept until the access token its session had then
// expires (every token minted before the change has expired by then), so
// the log holds the changes to sessions whose access token is in date:
// refreshes before expiry, logouts, revocations.
type changeLog struct {
	window time.Duration
	max    int // changes kept in memory at most
	now    func() time.Time

	// since: the changes in memory are complete from here on. It moves
	// when the memory side starts over (apply).
	since time.Time

	mu        sync.RWMutex
	bySession map[sessionKey]change

	last int64 // the highest seq applied; only the writer's goroutine uses it
}

// sessionKey is a session id in 16 bytes: the service's ids are 32 hex
// digits, taken as their bytes; any other id is hashed. Two ids sharing a
// key would only make Unchanged answer false more often.
type sessionKey [16]byte

func keyOf(id string) sessionKey {
	if k, ok := token.IDBytes(id); ok {
		return k
	}
	var k sessionKey
	sum := sha256.Sum256([]byte(id))
	copy(k[:], sum[:])
	return k
}

// change is a session's latest change: its seq, and the access token the
// session answers to since, if any, as the last 16 bytes of its hash (128
// bits of its SHA-256: no other token of the session shares them).
type change struct {
	seq   int64
	hash  [16]byte
	valid bool // hash is set
}

func changeOf(seq int64, hash []byte) change {
	c := change{seq: seq}
	if len(hash) >= len(c.hash) {
		copy(c.hash[:], hash[len(hash)-len(c.hash):])
		c.valid = true
	}
	return c
}

func (c change) answersTo(hash []byte) bool {
	return c.valid && len(hash) >= len(c.hash) && bytes.Equal(c.hash[:], hash[len(hash)-len(c.hash):])
}

const (
	changesKeptSQL  = `SELECT since, window FROM session_changes_kept`
	keepChangesSQL  = `UPDATE session_changes_kept SET window = ?`
	resetChangesSQL = `UPDATE session_changes_kept SET since = CAST(unixepoch('subsec') * 1000000 AS INTEGER), window = ?`
	loadChangesSQL  = `SELECT seq, id, access_hash FROM session_changes ORDER BY seq`
	tailChangesSQL  = `SELECT seq, id, access_hash FROM session_changes WHERE seq > ? ORDER BY seq`
	// Changed: a session that is gone, or whose token has expired, keeps
	// what the log says of it.
	markChangedSQL = `INSERT INTO session_changes (id, until, access_hash)
		SELECT id, access_expires_at, NULL FROM sessions
		WHERE id = ? AND access_expires_at > CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 1000000`
	// A chunk at a time (DeleteExpired).
	pruneChangesSQL = `DELETE FROM session_changes WHERE seq IN (
		SELECT seq FROM session_changes WHERE until < CAST(unixepoch('subsec') * 1000000 AS INTEGER) LIMIT ?)
		RETURNING seq, id, NULL`
)

// openChangeLog loads the log on the writer. A window other than the one
// the file was last opened with starts the log over (since = now): a
// change is kept as long as the session's token of the time lived, and a
// token minted under another lifetime may outlive it. A file no Store
// with a window has opened holds every change since it was made.
func openChangeLog(ctx context.Context, db *sql.DB, window time.Duration, max int, now func() time.Time) (*changeLog, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // a no-op after Commit
	var since, kept int64
	if err := tx.QueryRowContext(ctx, changesKeptSQL).Scan(&since, &kept); err != nil {
		return nil, fmt.Errorf("read session_changes_kept: %w", err)
	}
	if kept != window.Microseconds() {
		query := keepChangesSQL
		if kept > 0 {
			query = resetChangesSQL
		}
		if _, err := tx.ExecContext(ctx, query, window.Microseconds()); err != nil {
			return nil, fmt.Errorf("update session_changes_kept: %w", err)
		}
		if err := tx.QueryRowContext(ctx, changesKeptSQL).Scan(&since, &kept); err != nil {
			return nil, fmt.Errorf("read session_changes_kept: %w", err)
		}
	}
	c := &changeLog{window: window, max: max, now: now, since: time.UnixMicro(since).UTC(), bySession: make(map[sessionKey]change)}
	pending, err := readChanges(ctx, tx, loadChangesSQL)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	c.apply(pending)
	return c, nil
}

type pendingChange struct {
	seq  int64
	id   string
	hash []byte // nil: none
}

func readChanges(ctx context.Context, q querier, query string, args ...any) ([]pendingChange, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read session changes: %w", err)
	}
	defer rows.Close()
	var out []pendingChange
	for rows.Next() {
		var p pendingChange
		if err := rows.Scan(&p.seq, &p.id, &p.hash); err != nil {
			return nil, fmt.Errorf("read session changes: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read session changes: %w", err)
	}
	return out, nil
}

// tail reads the changes tx made, for apply once it commits.
func (c *changeLog) tail(tx wtx) ([]pendingChange, error) {
	return readChanges(context.Background(), tx, tailChangesSQL, c.last)
}

func (c *changeLog) apply(pending []pendingChange) {
	if len(pending) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pending {
		c.bySession[keyOf(p.id)] = changeOf(p.seq, p.hash)
		c.last = max(c.last, p.seq)
	}
	if len(c.bySession) > c.max {
		// Memory stays bounded under a flood of changes: start over, and
		// vouch for no token minted before, which are read instead.
		clear(c.bySession)
		c.since = c.now()
	}
}

// forget drops the changes a prune deleted, unless a later one of the
// same session is kept (a later change is kept at least as long).
func (c *changeLog) forget(pruned []pendingChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range pruned {
		k := keyOf(p.id)
		if e, ok := c.bySession[k]; ok && e.seq == p.seq {
			delete(c.bySession, k)
		}
	}
}

func (c *changeLog) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.bySession)
}

// Unchanged implements store.ChangeLog.
func (s *Store) Unchanged(id string, accessHash []byte, minted, expires time.Time) bool {
	c := s.changes
	if c == nil || expires.Sub(minted) > c.window {
		return false
	}
	k := keyOf(id)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if minted.Before(c.since) {
		return false
	}
	e, ok := c.bySession[k]
	return !ok || e.answersTo(accessHash)
}

// Changed implements store.ChangeLog.
func (s *Store) Changed(ctx context.Context, id string) error {
	return s.inTx(ctx, "mark session changed", func(ctx context.Context, tx wtx) error {
		_, err := tx.ExecContext(ctx, markChangedSQL, id)
		return err
	})
}

// pruneChanges deletes the changes whose tokens have all expired, a chunk
// per transaction; 0 without a change log.
func (s *Store) pruneChanges(ctx context.Context) (int, error) {
	c := s.changes
	if c == nil {
		return 0, nil
	}
	total := 0
	for {
		var pruned []pendingChange
		err := s.inTx(ctx, "prune session changes", func(ctx context.Context, tx wtx) error {
			var err error
			pruned, err = readChanges(ctx, tx, pruneChangesSQL, deleteChunk)
			return err
		})
		if err != nil {
			return total, err
		}
		c.forget(pruned)
		total += len(pruned)
		if len(pruned) < deleteChunk {
			return total, nil
		}
	}
}

var _ store.ChangeLog = (*Store)(nil)
