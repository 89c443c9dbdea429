package embedded

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// faultyDisk opens the log's files through os, and fails their writes,
// fsyncs, truncations or the creation of the rewrite's temporary file when
// told to: a full disk without mounting a small file system.
type faultyDisk struct {
	mu       sync.Mutex
	writeCut int  // > 0: a write stores this many bytes, then fails with ENOSPC
	syncFail bool // fsync fails with EIO
	truncErr bool // truncation fails with EIO
	tmpFail  bool // creating the rewrite's temporary file fails with ENOSPC
}

func (d *faultyDisk) set(f func(d *faultyDisk)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func (d *faultyDisk) open(name string, flag int, perm fs.FileMode) (logFile, error) {
	d.mu.Lock()
	fail := d.tmpFail && strings.HasSuffix(name, ".tmp")
	d.mu.Unlock()
	if fail {
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOSPC}
	}
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: f, d: d}, nil
}

type faultyFile struct {
	*os.File
	d *faultyDisk
}

func (f *faultyFile) Write(b []byte) (int, error) {
	f.d.mu.Lock()
	cut := f.d.writeCut
	f.d.mu.Unlock()
	if cut > 0 && cut < len(b) {
		n, _ := f.File.Write(b[:cut])
		return n, syscall.ENOSPC
	}
	return f.File.Write(b)
}

func (f *faultyFile) Sync() error {
	f.d.mu.Lock()
	fail := f.d.syncFail
	f.d.mu.Unlock()
	if fail {
		return syscall.EIO
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	f.d.mu.Lock()
	fail := f.d.truncErr
	f.d.mu.Unlock()
	if fail {
		return syscall.EIO
	}
	return f.File.Truncate(size)
}

// TestFailedAppendLeavesLogOpenable: a Revoke whose write or fsync fails
// (a full disk) returns the error and records nothing; the Revoke after it
// succeeds, and the file reopens with the entries recorded before and
// after, with distinct increasing Seqs. Without the cut back to the length
// before the failed record, reopening fails with "line 3 is damaged" (the
// partial record and the next one on one line, or two records with Seq 2).
func TestFailedAppendLeavesLogOpenable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(d *faultyDisk)
	}{
		{"write cut short", func(d *faultyDisk) { d.writeCut = 20 }},
		{"fsync fails", func(d *faultyDisk) { d.syncFail = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, c, disk, l := openFaulty(t)
			a := revoke(t, l, sid("a"))
			disk.set(tc.fault)
			if _, err := l.Revoke(context.Background(), sid("b")); !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EIO) {
				t.Fatalf("Revoke on a failing disk: %v, want ENOSPC or EIO", err)
			}
			disk.set(func(d *faultyDisk) { d.writeCut, d.syncFail = 0, false })
			c2 := revoke(t, l, sid("c"))
			if c2.Seq != a.Seq+1 {
				t.Errorf("Seq after the failure: %d, want %d (the failed entry was never recorded)", c2.Seq, a.Seq+1)
			}
			if got := seqs(l.entries); got != "1,2" {
				t.Errorf("entries in memory: Seqs %s, want 1,2", got)
			}
			l.Close()
			r := reopen(t, dir, c, "after a failed append", "1,2")
			if r.entries[0].Digest != a.Digest || r.entries[1].Digest != c2.Digest {
				t.Errorf("reopened entries are not a and c: %+v", r.entries)
			}
			if e := revoke(t, r, sid("d")); e.Seq != 3 {
				t.Errorf("Seq after reopening: %d, want 3", e.Seq)
			}
		})
	}
}

// TestBrokenLogIsRewritten: when the failed record cannot be cut off
// either, the log is broken: every Revoke fails while the file cannot be
// rewritten from memory, and the first one after that can succeeds; the
// file then reopens with what was acknowledged. Without the broken mark,
// the next Revoke appends after the partial record and reopening fails.
// openFaulty opens a log in a new directory on a disk whose faults the
// test sets, with a clock at now; the log is closed when the test ends.
func openFaulty(t *testing.T) (dir string, c *clock, disk *faultyDisk, l *Log) {
	t.Helper()
	dir, c, disk = t.TempDir(), &clock{}, &faultyDisk{}
	c.unix.Store(time.Now().Unix())
	l, err := openLog(dir, time.Hour, c.now, disk.open)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return dir, c, disk, l
}

// reopen opens the log in dir again (closed when the test ends) and checks
// that the entries read back have the Seqs want; when says after what.
func reopen(t *testing.T, dir string, c *clock, when, want string) *Log {
	t.Helper()
	r, err := Open(dir, time.Hour, c.now)
	if err != nil {
		t.Fatalf("reopen %s: %v", when, err)
	}
	t.Cleanup(func() { r.Close() })
	if got := seqs(r.entries); got != want {
		t.Errorf("reopened entries %s: Seqs %s, want %s", when, got, want)
	}
	return r
}

func TestBrokenLogIsRewritten(t *testing.T) {
	dir, c, disk, l := openFaulty(t)
	revoke(t, l, sid("a"))
	disk.set(func(d *faultyDisk) { d.writeCut, d.truncErr, d.tmpFail = 20, true, true })
	if _, err := l.Revoke(context.Background(), sid("b")); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Revoke on a full disk: %v, want ENOSPC", err)
	}
	// The disk has room again for appends, but not yet for a new file.
	disk.set(func(d *faultyDisk) { d.writeCut, d.truncErr = 0, false })
	if _, err := l.Revoke(context.Background(), sid("c")); err == nil || !strings.Contains(err.Error(), "could not be repaired") {
		t.Fatalf("Revoke on a broken log that cannot be rewritten: %v, want 'could not be repaired'", err)
	}
	disk.set(func(d *faultyDisk) { d.tmpFail = false })
	d := revoke(t, l, sid("d"))
	if d.Seq != 2 {
		t.Errorf("Seq of the first entry recorded after the repair: %d, want 2", d.Seq)
	}
	l.Close()
	if _, err := os.Stat(filepath.Join(dir, FileName+".tmp")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the rewrite's temporary file is left: %v", err)
	}
	reopen(t, dir, c, "after a repaired log", "1,2")
}
