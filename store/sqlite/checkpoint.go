package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"time"
)

// Checkpoints off the write path. SQLite's automatic checkpoint runs inside
// the commit that crosses its threshold, on the one writer: every thousand
// pages or so, a commit also copies the WAL into the database file and
// fsyncs both, and every write queued behind it waits. In WAL mode a
// checkpoint can run beside the writer, so the writer's connection has
// automatic checkpoints off, and a connection of its own checkpoints after
// commits, at most once per checkpointEvery. Waiting between checkpoints
// also lets the pages that every batch touches (index roots, the ends of
// time-ordered indexes) be copied once for many commits.
//
// Nor does such a checkpoint sync the database file: SQLite syncs it only
// when a checkpoint reaches the end of the WAL, and under steady writes the
// writer has always committed more by then. The pages copied since the
// last sync would pile up until the writer's own checkpoint (the rewind
// below) synced them all, holding up every write for tens of milliseconds,
// more as the database grows. So the checkpointer syncs the file itself,
// through a descriptor of its own, after every checkpoint that copied
// anything.
//
// A checkpoint beside the writer never rewinds the WAL, though: only a
// writer that begins when every frame has been copied starts the WAL over,
// and under steady writes there are always new frames by then. So when the
// WAL has grown past rewindFrames, the checkpointer asks the writer to run
// one checkpoint itself between two batches (batch.go). Most frames are
// already copied by then, so that one is short, and the writer's next
// transaction starts the WAL from its beginning.

// checkpointEvery paces the checkpoints while writes go on. Between two of
// them the WAL grows by what the writer commits in that time.
const checkpointEvery = 250 * time.Millisecond

// rewindSize is the WAL length past which the writer is asked to rewind it.
// Each rewind holds up writes for a checkpoint and a sync (5-25 ms under
// load on a small machine), so the longer the WAL, the rarer these stalls:
// at 2,000 logins a second a 256 MiB WAL starts over every few seconds.
const rewindSize = 256 << 20

// rewindFrames is rewindSize in frames of 4 KiB pages.
const rewindFrames = rewindSize / 4096

// walSizeLimit is what the WAL file is truncated to when SQLite starts it
// over, so that a burst does not leave a large file behind. It is above
// rewindSize, with room for what is committed while the checkpointer
// catches up: truncating the file as it starts over, on the writer, would
// cost a stall of its own (tens of milliseconds to free the blocks).
const walSizeLimit = rewindSize + 64<<20

type checkpointer struct {
	db     *sql.DB // one connection
	log    *slog.Logger
	every  time.Duration
	frames int // rewind past this many frames
	// catchUps bounds the extra checkpoints run at once before a rewind.
	catchUps int
	rewind   func()        // asks the writer to checkpoint between batches
	syncDB   func() error  // syncs the database file (see above)
	kick     chan struct{} // buffered 1: commits never wait
	// synced is the count of copied frames at the last sync; a sync is
	// due when it changes (the WAL grew, or started over).
	synced int
	// observe, if set before the first commit, sees each checkpoint's
	// result: frames in the WAL, frames now in the database file.
	observe func(walFrames, checkpointed int, err error)
	quit    chan struct{}
	done    chan struct{}
}

func newCheckpointer(db *sql.DB, log *slog.Logger, rewind func(), syncDB func() error) *checkpointer {
	return &checkpointer{
		db:       db,
		log:      log,
		every:    checkpointEvery,
		frames:   rewindFrames,
		catchUps: 3,
		rewind:   rewind,
		syncDB:   syncDB,
		kick:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

func (c *checkpointer) start() { go c.run() }

// committed tells the checkpointer that the WAL has grown.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		c.checkpoint()
		pace := time.NewTimer(c.every)
		select {
		case <-pace.C:
		case <-c.quit:
			pace.Stop()
			return
		}
	}
}

// checkpoint copies what it can of the WAL into the database file, and
// syncs the file. PASSIVE neither waits for nor blocks the writer and the
// readers; what a reader still needs stays in the WAL for the next one.
//
// When the WAL is long enough to start over, it first catches up: each
// pass copies and syncs what the writer committed while the previous pass
// and its sync ran, which is less each time, until a pass has little left
// to copy. The writer's own checkpoint (the rewind) then copies and syncs
// only what it committed during that last short sync, instead of all it
// committed during one long sync of everything copied so far.
func (c *checkpointer) checkpoint() {
	wal, copied, ok := c.passive()
	c.sync(copied)
	for range c.catchUps {
		if !ok || wal < c.frames {
			break
		}
		before := copied
		if wal, copied, ok = c.passive(); !ok {
			break
		}
		c.sync(copied)
		// Also when nothing more could be copied (a reader holds the WAL),
		// or the WAL started over (fewer frames copied than before).
		if copied-before < catchUpFrames {
			break
		}
	}
	if ok && wal >= c.frames {
		c.rewind()
	}
}

// catchUpFrames: a catch-up pass that copied fewer frames than this ends
// the catching up; its sync was short, and so is what the writer committed
// meanwhile.
const catchUpFrames = 256

// sync syncs the database file if frames were copied since the last sync
// (copied, the frames now in the file, changed: the WAL grew or started
// over).
func (c *checkpointer) sync(copied int) {
	if copied == 0 || copied == c.synced {
		return
	}
	if err := c.syncDB(); err != nil {
		c.log.Warn("sqlite: sync after checkpoint failed", "err", err)
		return
	}
	c.synced = copied
}

func (c *checkpointer) passive() (walFrames, copied int, ok bool) {
	walFrames, copied, err := walCheckpoint(c.db)
	if c.observe != nil {
		c.observe(walFrames, copied, err)
	}
	if err != nil {
		c.log.Warn("sqlite: checkpoint failed; the WAL grows until one succeeds", "err", err)
		return 0, 0, false
	}
	c.log.Debug("sqlite: checkpoint", "wal_frames", walFrames, "checkpointed", copied)
	return walFrames, copied, true
}

// walCheckpoint runs a PASSIVE checkpoint on db and returns the WAL's
// length and how much of it is now in the database file, in frames.
func walCheckpoint(db rowQuerier) (walFrames, copied int, err error) {
	var busy int
	err = db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &walFrames, &copied)
	return walFrames, copied, err
}

func (c *checkpointer) stop() error {
	close(c.quit)
	<-c.done
	return c.db.Close()
}
