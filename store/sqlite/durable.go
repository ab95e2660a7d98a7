package sqlite

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/mplogin/mplogin/store"
)

// Durable revocations. The database runs with synchronous=NORMAL: a commit
// reaches the WAL without an fsync, so a power loss (not a crash of the
// process) may undo the last commits. An undone login costs the user a new
// login; an undone logout or revocation is a session that comes back. So a
// write that revokes is answered only once the WAL is on disk: after its
// batch commits, the batcher hands it to the syncer, which syncs the WAL
// file and then answers every revocation committed before that sync began.
// The batcher does not wait: the other writes of the batch are answered at
// once, and the next batch starts, so logins never wait for the disk.
//
// One sync of the WAL file covers every frame written to it before the
// sync, whatever happens to them next: a checkpoint syncs the WAL before it
// copies frames into the database file, and SQLite starts the WAL over only
// after a checkpoint that copied all of it and synced the database file.

// always is writeOp.durable for a write that always revokes.
func always(error) bool { return true }

// reused is writeOp.durable for a rotation: a replayed refresh token
// revokes its session.
func reused(err error) bool { return errors.Is(err, store.ErrReused) }

// walSyncer syncs the WAL file for revocations (see above).
type walSyncer struct {
	path string
	f    *os.File // the WAL file at path; only the syncer's goroutine uses it
	// sync syncs the WAL: syncWAL, or a test's stand-in, set before the
	// first write.
	sync func() error

	mu      sync.Mutex
	waiting []answer // committed, to be answered after the next sync
	kick    chan struct{}
	quit    chan struct{}
	done    chan struct{}
}

type answer struct {
	op     *writeOp
	result error
}

// openWAL opens the WAL file at path, which SQLite has created by then (the
// store's connections are in WAL mode and stay open until Close).
func openWAL(path string) (*walSyncer, error) {
	// Read-write, as some systems require to sync; nothing writes through it.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	w := &walSyncer{path: path, f: f, kick: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
	w.sync = w.syncWAL
	return w, nil
}

func (w *walSyncer) start() { go w.run() }

// stop answers what is waiting, after a last sync; call it once the
// batcher has stopped.
func (w *walSyncer) stop() {
	close(w.quit)
	<-w.done
}

// close closes the WAL file; call it after stop, and after SQLite's own
// connections (closing a descriptor drops the process's locks on the file).
func (w *walSyncer) close() error { return w.f.Close() }

// answerAfterSync answers op with result once a sync that began after this
// call has succeeded. The batcher calls it after the commit; it never
// waits.
func (w *walSyncer) answerAfterSync(op *writeOp, result error) {
	w.mu.Lock()
	w.waiting = append(w.waiting, answer{op, result})
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *walSyncer) run() {
	defer close(w.done)
	for {
		select {
		case <-w.kick:
			w.flush()
		case <-w.quit:
			w.flush()
			return
		}
	}
}

// flush syncs once for every revocation waiting, then answers them: those
// that come while it syncs wait for the next one.
func (w *walSyncer) flush() {
	w.mu.Lock()
	batch := w.waiting
	w.waiting = nil
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	err := w.sync()
	if err != nil {
		// Committed, and seen by this process, but perhaps not on disk: the
		// caller must not take it as done.
		err = fmt.Errorf("sync the WAL: %w: %w", store.ErrUnavailable, err)
	}
	for _, a := range batch {
		if err != nil {
			a.op.done <- err
		} else {
			a.op.done <- a.result
		}
	}
}

// syncWAL syncs the WAL file's data (syncData). SQLite keeps one WAL file
// while any of its connections is open; should a new one ever take the
// path (a new inode), the descriptor follows it, so that the sync reaches
// the file written to.
func (w *walSyncer) syncWAL() error {
	cur, err := os.Stat(w.path)
	if err != nil {
		return err
	}
	if held, err := w.f.Stat(); err != nil || !os.SameFile(held, cur) {
		f, err := os.OpenFile(w.path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		w.f.Close() // the old inode's: no lock of SQLite's is on it
		w.f = f
	}
	return syncData(w.f)
}
