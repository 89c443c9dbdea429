// Package embedded is the revocation store of a single machine (issue #13),
// the default: no process besides the daemons. The agent records
// revocations in a [Log], persisted under its state directory and served on
// its ops listener as a feed ([Log.Handler]); every proxy follows the feed
// with a [Follower], which keeps its revocation.Set current.
//
// The feed is a long poll: GET /revocations?after=SEQ&epoch=E&wait=25s
// answers at once when the log holds entries after SEQ, else when one is
// recorded or wait has passed, with
//
//	{"epoch":"<random per log file>","seq":N,"entries":[...],"reset":bool}
//
// reset is true when the follower must drop what it has and take entries as
// the whole list: it named another epoch (the agent lost its log, or keeps
// none and restarted) or a SEQ the log never reached. A follower that
// resumes after a dropped connection or the agent's restart asks from the
// highest Seq it holds, so nothing recorded in between is lost.
//
// Entries are digests of the Provider's sid and of iss+sub
// (session.HashSID, session.HashSub), not the identifiers: the feed tells
// whoever can reach it how many sessions ended and when, nothing more. Serve
// it only on the ops listener (a private address), like /metrics.
package embedded

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/session"
)

// FileName is the log's file in the state directory.
const FileName = "revocations.log"

// header starts the first line of the file: header, the epoch in hex and
// the log's sequence number when the file was written, which the records
// after it continue (compaction may have dropped the records that had it).
const header = "tokenhandler-revocations v1"

// compactAfter: the file is rewritten without its expired records once it
// holds more than this many and more than twice as many as are live.
const compactAfter = 1024

// ErrClosed is returned by Revoke after Close.
var ErrClosed = errors.New("embedded: the revocation log is closed")

// logFile is what the log writes through: an *os.File, or in tests one
// that fails on demand (a full disk, a failing fsync).
type logFile interface {
	Write(b []byte) (int, error)
	Sync() error
	Truncate(size int64) error
	Close() error
}

func openOSFile(name string, flag int, perm fs.FileMode) (logFile, error) {
	return os.OpenFile(name, flag, perm)
}

// Log is the agent's revocation store: the list in memory, appended to a
// file under its directory (one line per entry, fsynced before Revoke
// returns), reloaded by Open after a restart. It implements
// revocation.Store. A Log is safe for concurrent use and must not be
// copied.
type Log struct {
	path string // "" = memory only
	// maxLifetime is session.max_lifetime in nanoseconds (SetMaxLifetime).
	maxLifetime atomic.Int64
	now         func() time.Time
	epoch       string
	openFile    func(name string, flag int, perm fs.FileMode) (logFile, error)

	mu sync.Mutex
	f  logFile // the append handle; nil when memory only or closed
	// size is the file's length after the last record written whole and
	// fsynced: a failed append is cut back to it.
	size int64
	// broken is why the file may hold a partial record that could not be
	// cut off (or the append handle is lost): Revoke rewrites the file from
	// memory before appending again, and fails while it cannot.
	broken      error
	entries     []revocation.Entry
	seq         uint64
	fileRecords int           // records in the file, live or not
	changed     chan struct{} // closed and replaced by every Revoke and by Close
	closed      bool
}

// Open opens the log under dir, creating dir (mode 0700) and the file
// (mode 0600) when missing; dir "" keeps the log in memory only, lost at a
// restart. maxLifetime (session.max_lifetime) is how long an entry lives
// when Revoke is given none; now is the clock (nil: time.Now).
//
// Entries that expired are dropped, and so is a last record torn by a
// crash during its write (it was never acknowledged); the file is then
// rewritten without them. The sequence number continues from the file's,
// and the epoch stays the file's: followers resume. A record damaged
// anywhere else, or a file that is not a revocation log, is an error.
func Open(dir string, maxLifetime time.Duration, now func() time.Time) (*Log, error) {
	return openLog(dir, maxLifetime, now, openOSFile)
}

// openLog is Open writing through openFile.
func openLog(dir string, maxLifetime time.Duration, now func() time.Time,
	openFile func(string, int, fs.FileMode) (logFile, error)) (*Log, error) {
	if maxLifetime <= 0 {
		return nil, fmt.Errorf("embedded: maxLifetime must be positive, got %v", maxLifetime)
	}
	if now == nil {
		now = time.Now
	}
	l := &Log{now: now, openFile: openFile, changed: make(chan struct{})}
	l.maxLifetime.Store(int64(maxLifetime))
	if dir == "" {
		l.epoch = revocation.NewEpoch()
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded: %w", err)
	}
	l.path = filepath.Join(dir, FileName)
	data, err := os.ReadFile(l.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.epoch = revocation.NewEpoch()
		if err := l.rewrite(); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("embedded: %w", err)
	default:
		torn, err := l.load(data)
		if err != nil {
			return nil, err
		}
		live := l.prune()
		if torn || live < l.fileRecords {
			if err := l.rewrite(); err != nil {
				return nil, err
			}
			break
		}
		if l.f, err = l.openFile(l.path, os.O_WRONLY|os.O_APPEND, 0); err != nil {
			return nil, fmt.Errorf("embedded: %w", err)
		}
		l.size = int64(len(data))
	}
	return l, nil
}

// load reads the file's text into l; torn reports a last line without its
// line ending, which was ignored.
func (l *Log) load(data []byte) (torn bool, err error) {
	lines := bytes.Split(data, []byte("\n"))
	if last := lines[len(lines)-1]; len(last) > 0 {
		torn = true // a record cut short by a crash: never acknowledged
	}
	lines = lines[:len(lines)-1]
	if len(lines) == 0 {
		return false, fmt.Errorf("embedded: %s: not a revocation log (no header line)", l.path)
	}
	h := strings.Fields(string(lines[0]))
	if len(h) != 4 || h[0]+" "+h[1] != header || len(h[2]) != 32 {
		return false, fmt.Errorf("embedded: %s: not a revocation log (line 1)", l.path)
	}
	if _, err := hex.DecodeString(h[2]); err != nil {
		return false, fmt.Errorf("embedded: %s: not a revocation log (line 1)", l.path)
	}
	l.epoch = h[2]
	if l.seq, err = strconv.ParseUint(h[3], 10, 64); err != nil {
		return false, fmt.Errorf("embedded: %s: not a revocation log (line 1)", l.path)
	}
	var prev uint64 // records are in increasing Seq order
	for i, line := range lines[1:] {
		e, ok := parseRecord(line)
		if !ok || e.Seq <= prev {
			return false, fmt.Errorf("embedded: %s: line %d is damaged: move the file away to start an empty list (followers then reset)", l.path, i+2)
		}
		l.entries = append(l.entries, e)
		l.seq, prev = max(l.seq, e.Seq), e.Seq
		l.fileRecords++
	}
	return torn, nil
}

// A record is one line: seq, kind (sid or sub), digest in hex, at,
// expires (the fields of a wireEntry), then the CRC-32 (IEEE) of the text
// before it, in hex.
func appendRecord(b []byte, e revocation.Entry) []byte {
	w, start := toWire(e), len(b)
	b = fmt.Appendf(b, "%d %s %s %d %d", w.Seq, w.Kind, w.Digest, w.At, w.Expires)
	return fmt.Appendf(b, " %08x\n", crc32.ChecksumIEEE(b[start:]))
}

func parseRecord(line []byte) (revocation.Entry, bool) {
	i := bytes.LastIndexByte(line, ' ')
	if i < 0 {
		return revocation.Entry{}, false
	}
	sum, err := strconv.ParseUint(string(line[i+1:]), 16, 32)
	if err != nil || len(line)-i-1 != 8 || uint32(sum) != crc32.ChecksumIEEE(line[:i]) {
		return revocation.Entry{}, false
	}
	f := strings.Fields(string(line[:i]))
	if len(f) != 5 {
		return revocation.Entry{}, false
	}
	w := wireEntry{Kind: f[1], Digest: f[2]}
	var err1, err2, err3 error
	w.Seq, err1 = strconv.ParseUint(f[0], 10, 64)
	w.At, err2 = strconv.ParseInt(f[3], 10, 64)
	w.Expires, err3 = strconv.ParseInt(f[4], 10, 64)
	e, err := w.entry()
	return e, err == nil && err1 == nil && err2 == nil && err3 == nil
}

// prune drops the entries that expired, keeping Seq order, and returns how
// many are left. l.mu is held (or l not yet shared).
func (l *Log) prune() int {
	now := l.now().Unix()
	l.entries = slices.DeleteFunc(l.entries, func(e revocation.Entry) bool { return now >= e.Expires })
	return len(l.entries)
}

// rewrite replaces the file with the header and the entries in memory: a
// new file written and fsynced beside it, renamed over it, and the
// directory fsynced, so that a crash leaves either file whole; then it
// opens the new file for appending (closing the old handle) and clears
// l.broken. If it fails before the rename, the old file and handle stay;
// after it, l.f is nil and l.broken set, so Revoke tries again. l.mu is
// held (or l not yet shared).
func (l *Log) rewrite() error {
	b := fmt.Appendf(nil, "%s %s %d\n", header, l.epoch, l.seq)
	for _, e := range l.entries {
		b = appendRecord(b, e)
	}
	tmp := l.path + ".tmp"
	f, err := l.openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("embedded: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("embedded: %w", err)
	}
	if d, err := os.Open(filepath.Dir(l.path)); err == nil {
		d.Sync()
		d.Close()
	}
	l.fileRecords = len(l.entries)
	if l.f != nil {
		l.f.Close()
	}
	if l.f, err = l.openFile(l.path, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		l.f = nil
		l.broken = fmt.Errorf("embedded: %w", err)
		return l.broken
	}
	l.size, l.broken = int64(len(b)), nil
	return nil
}

// SetMaxLifetime makes d the lifetime of the entries Revoke records from
// now on without an Expires (it implements revocation.MaxLifetimeSetter; a
// reload calls it). Entries recorded before keep their Expires: the log
// caps nothing, and the agent records every entry for as long as a session
// it could end may last. It refuses a d that is not positive, as Open does.
func (l *Log) SetMaxLifetime(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("embedded: maxLifetime must be positive, got %v", d)
	}
	l.maxLifetime.Store(int64(d))
	return nil
}

// Revoke records e and returns it with its Seq. An At of 0 is now; an
// Expires of 0 is At plus maxLifetime. The entry is in the file, fsynced,
// before Revoke returns; if writing fails, it is not recorded, and Revoke
// returns the error (the back-channel endpoint answers 503 and the
// Provider retries). ctx is not consulted: the write is short.
//
// A failed write or fsync (a full disk) is cut off the file, so the file
// still opens and the next entry gets the same Seq at the same place: a
// Seq is only ever given to one record in the file and to one entry in
// memory. If the cut fails too, every later Revoke first rewrites the file
// from memory, and fails while that fails.
func (l *Log) Revoke(_ context.Context, e revocation.Entry) (revocation.Entry, error) {
	var zero session.Digest
	if e.Kind != revocation.BySID && e.Kind != revocation.BySub {
		return e, fmt.Errorf("embedded: unknown entry kind %d", e.Kind)
	}
	if e.Digest == zero {
		return e, errors.New("embedded: an entry needs a digest")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return e, ErrClosed
	}
	if e.At == 0 {
		e.At = l.now().Unix()
	}
	if e.Expires == 0 {
		e.Expires = e.At + int64(time.Duration(l.maxLifetime.Load())/time.Second)
	}
	if l.path != "" && (l.broken != nil || l.f == nil) {
		if err := l.rewrite(); err != nil {
			return e, fmt.Errorf("embedded: recording a revocation: the log could not be repaired: %w", err)
		}
	}
	e.Seq = l.seq + 1
	if l.f != nil {
		if err := l.append(appendRecord(nil, e)); err != nil {
			return e, fmt.Errorf("embedded: recording a revocation: %w", err)
		}
		l.fileRecords++
	}
	l.seq = e.Seq
	l.entries = append(l.entries, e)
	close(l.changed)
	l.changed = make(chan struct{})
	if l.fileRecords > compactAfter && l.fileRecords > 2*l.prune() && l.f != nil {
		// The entry is durable already; a failed compaction leaves the
		// longer file, which still loads.
		l.rewrite()
	}
	return e, nil
}

// append writes rec at the end of the file and fsyncs it. When either
// fails, it cuts the file back to its length before, so that no partial
// or unacknowledged record stays for the next one to follow (the file
// would no longer open); when that fails too, it marks the log broken.
// l.mu is held.
func (l *Log) append(rec []byte) error {
	_, err := l.f.Write(rec)
	if err == nil {
		if err = l.f.Sync(); err == nil {
			l.size += int64(len(rec))
			return nil
		}
	}
	if terr := l.f.Truncate(l.size); terr != nil {
		l.broken = terr
	}
	return err
}

// snapshot returns the live entries after seq (all of them after 0: Seqs
// start at 1), the log's sequence number, the channel the next change
// closes, and whether the log is closed.
func (l *Log) snapshot(after uint64) ([]revocation.Entry, uint64, <-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].Seq > after })
	now := l.now().Unix()
	var out []revocation.Entry
	for _, e := range l.entries[i:] {
		if now < e.Expires {
			out = append(out, e)
		}
	}
	return out, l.seq, l.changed, l.closed
}

// Follow keeps set equal to the log until ctx ends: every live entry at
// once, then each new one as it is recorded. It marks set synced every
// second (the log is local: it is never stale); the agent prunes expired
// entries from set itself. It returns ctx's error, or ErrClosed after
// Close.
func (l *Log) Follow(ctx context.Context, set *revocation.Set) error {
	entries, seq, changed, closed := l.snapshot(0)
	set.Reset(entries, seq)
	set.Synced(l.now())
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !closed {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-tick.C:
		}
		entries, seq, changed, closed = l.snapshot(seq)
		set.Add(entries...)
		set.Synced(l.now())
	}
	return ErrClosed
}

// Close closes the file and ends every Follow and long poll. Revoke then
// fails with ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.changed)
	l.changed = make(chan struct{})
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

var (
	_ revocation.Store             = (*Log)(nil)
	_ revocation.MaxLifetimeSetter = (*Log)(nil)
)
