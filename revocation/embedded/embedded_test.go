package embedded

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
	"github.com/tokenhandler/tokenhandler/revocation"
	"github.com/tokenhandler/tokenhandler/revocation/revocationtest"
	"github.com/tokenhandler/tokenhandler/session"
)

const iss = "https://op.example"

// clock is a settable clock for Open.
type clock struct{ unix atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(c.unix.Load(), 0) }

func sid(s string) revocation.Entry {
	return revocation.Entry{Kind: revocation.BySID, Digest: session.HashSID(iss, s)}
}

func revoke(t *testing.T, l *Log, e revocation.Entry) revocation.Entry {
	t.Helper()
	e, err := l.Revoke(context.Background(), e)
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	return e
}

func open(t *testing.T, dir string, c *clock) *Log {
	t.Helper()
	l, err := Open(dir, time.Hour, c.now)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func seqs(entries []revocation.Entry) string {
	var b []string
	for _, e := range entries {
		b = append(b, strconv.FormatUint(e.Seq, 10))
	}
	return strings.Join(b, ",")
}

// TestDurable: what Revoke acknowledged is there after a reopen, with the
// same epoch and a Seq that continues; entries that expired meanwhile are
// dropped and compacted out of the file.
func TestDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	c := &clock{}
	c.unix.Store(1000)
	l := open(t, dir, c)
	short := sid("short")
	short.Expires = 1500
	if got := revoke(t, l, short); got.Seq != 1 || got.At != 1000 {
		t.Errorf("first entry: Seq %d, At %d; want 1, 1000", got.Seq, got.At)
	}
	sub := revocation.Entry{Kind: revocation.BySub, Digest: session.HashSub(iss, "alice"), At: 990}
	if got := revoke(t, l, sub); got.Seq != 2 || got.Expires != 990+3600 {
		t.Errorf("second entry: Seq %d, Expires %d; want 2, 4590 (At + maxLifetime)", got.Seq, got.Expires)
	}
	revoke(t, l, sid("long"))
	epoch := l.epoch
	l.Close()
	if _, err := l.Revoke(context.Background(), sid("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Revoke after Close: %v, want ErrClosed", err)
	}
	for _, p := range []string{dir, filepath.Join(dir, FileName)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v, mode %v; want private", p, err, fi.Mode())
		}
	}

	c.unix.Store(2000) // the short entry expired
	l = open(t, dir, c)
	if l.epoch != epoch {
		t.Errorf("epoch changed across a reopen: %s, then %s", epoch, l.epoch)
	}
	entries, seq, _, _ := l.snapshot(0)
	if seqs(entries) != "2,3" || seq != 3 {
		t.Errorf("after reopen: entries %s, seq %d; want 2,3 and 3", seqs(entries), seq)
	}
	if got := revoke(t, l, sid("after")); got.Seq != 4 {
		t.Errorf("Seq after reopen %d, want 4", got.Seq)
	}
	data, _ := os.ReadFile(filepath.Join(dir, FileName))
	if n := strings.Count(string(data), "\n"); n != 4 {
		t.Errorf("the file has %d lines, want 4 (header and 3 live entries: the expired one compacted):\n%s", n, data)
	}
	l.Close()

	// Everything expired: the file keeps the sequence number in its header.
	c.unix.Store(100_000)
	l = open(t, dir, c)
	if got := revoke(t, l, sid("later")); got.Seq != 5 || l.epoch != epoch {
		t.Errorf("after every entry expired: Seq %d, epoch %s; want 5, %s", got.Seq, l.epoch, epoch)
	}
}

// TestTornLastRecord: a record cut short by a crash (never acknowledged)
// is ignored and cut off, so the next record does not land on its line; a
// record damaged elsewhere, or a file that is no log, is an error.
func TestTornLastRecord(t *testing.T) {
	dir := t.TempDir()
	c := &clock{}
	c.unix.Store(1000)
	l := open(t, dir, c)
	revoke(t, l, sid("a"))
	revoke(t, l, sid("b"))
	l.Close()
	path := filepath.Join(dir, FileName)
	whole, _ := os.ReadFile(path)
	torn := appendRecord(nil, revocation.Entry{Kind: revocation.BySID, Digest: session.HashSID(iss, "c"), At: 1000, Expires: 4600, Seq: 3})
	if err := os.WriteFile(path, append(append([]byte{}, whole...), torn[:len(torn)-9]...), 0o600); err != nil {
		t.Fatal(err)
	}
	l = open(t, dir, c)
	if entries, seq, _, _ := l.snapshot(0); seqs(entries) != "1,2" || seq != 2 {
		t.Errorf("after a torn record: entries %s, seq %d; want 1,2 and 2", seqs(entries), seq)
	}
	revoke(t, l, sid("c"))
	l.Close()
	l = open(t, dir, c)
	if entries, _, _, _ := l.snapshot(0); seqs(entries) != "1,2,3" {
		t.Errorf("after a torn record and a new one: entries %s, want 1,2,3", seqs(entries))
	}
	l.Close()

	lines := strings.SplitAfter(string(whole), "\n")
	for name, text := range map[string]string{
		"damaged middle record": lines[0] + strings.Replace(lines[1], " sid ", " sub ", 1) + lines[2],
		"no header":             lines[1] + lines[2],
		"empty":                 "",
	} {
		os.WriteFile(path, []byte(text), 0o600)
		if l, err := Open(dir, time.Hour, c.now); err == nil {
			l.Close()
			t.Errorf("%s: Open succeeded", name)
		} else if !strings.HasPrefix(err.Error(), "embedded: "+path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
}

// TestMemoryOnly: without a directory every Open has a new epoch, which
// makes followers reset.
func TestMemoryOnly(t *testing.T) {
	c := &clock{}
	a, b := open(t, "", c), open(t, "", c)
	if a.epoch == b.epoch || len(a.epoch) != 32 {
		t.Errorf("epochs %q and %q", a.epoch, b.epoch)
	}
	if _, err := a.Revoke(context.Background(), revocation.Entry{Kind: revocation.BySID}); err == nil {
		t.Error("an entry without digest was recorded")
	}
	if _, err := a.Revoke(context.Background(), revocation.Entry{Kind: 7, Digest: sid("x").Digest}); err == nil {
		t.Error("an entry of unknown kind was recorded")
	}
	if _, err := Open("", 0, nil); err == nil {
		t.Error("Open with maxLifetime 0 succeeded")
	}
}

// serve serves h on addr (127.0.0.1:0 for a new port) until the returned
// stop.
func serve(t *testing.T, h fasthttp.RequestHandler, addr string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Shutdown()
			<-done
		}
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func getAnswer(t *testing.T, url string) (int, answer) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, body := bintest.Do(t, http.DefaultClient, req)
	var a answer
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("%s: %v: %s", url, err, body)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", url, resp.Header.Get("Cache-Control"))
		}
	}
	return resp.StatusCode, a
}

// TestHandler: the feed's answers to each kind of poll.
func TestHandler(t *testing.T) {
	c := &clock{}
	c.unix.Store(1000)
	l := open(t, "", c)
	addr, _ := serve(t, l.Handler(), "127.0.0.1:0")
	feed := "http://" + addr + Path
	revoke(t, l, sid("a"))
	revoke(t, l, revocation.Entry{Kind: revocation.BySub, Digest: session.HashSub(iss, "bob"), At: 900})
	expired := sid("expired")
	expired.Expires = 1001
	revoke(t, l, expired)
	c.unix.Store(1001)
	e := l.epoch

	for _, tc := range []struct {
		name, query string
		wantSeqs    string
		wantReset   bool
	}{
		{"first poll: the whole list", "?after=0&wait=0s", "1,2", true},
		{"another epoch: the whole list", "?after=2&epoch=0123&wait=0s", "1,2", true},
		{"resume", "?after=1&epoch=" + e + "&wait=0s", "2", false},
		{"a seq the log never reached", "?after=9&epoch=" + e + "&wait=0s", "1,2", true},
		{"up to date, no wait", "?after=3&epoch=" + e + "&wait=0s", "", false},
	} {
		code, a := getAnswer(t, feed+tc.query)
		var got []string
		for _, w := range a.Entries {
			got = append(got, strconv.FormatUint(w.Seq, 10))
		}
		if code != 200 || strings.Join(got, ",") != tc.wantSeqs || a.Reset != tc.wantReset || a.Seq != 3 || a.Epoch != e {
			t.Errorf("%s: %d %+v; want entries %s, reset %v, seq 3", tc.name, code, a, tc.wantSeqs, tc.wantReset)
		}
	}
	_, a := getAnswer(t, feed+"?wait=0s")
	if got, err := fromWire(a.Entries); err != nil || got[1].Kind != revocation.BySub || got[1].Digest != session.HashSub(iss, "bob") || got[1].At != 900 {
		t.Errorf("the entries do not round-trip: %+v, %v", got, err)
	}
	for _, q := range []string{"?after=-1", "?after=x", "?wait=soon", "?wait=-1s"} {
		if code, _ := getAnswer(t, feed+q); code != 400 {
			t.Errorf("%s: %d, want 400", q, code)
		}
	}
	req, _ := http.NewRequest("POST", feed, nil)
	if resp, _ := bintest.Do(t, http.DefaultClient, req); resp.StatusCode != 405 {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

// TestLongPoll: a waiting poll answers within 100 ms of a Revoke, and a
// server's shutdown ends it.
func TestLongPoll(t *testing.T) {
	c := &clock{}
	c.unix.Store(1000)
	l := open(t, "", c)
	addr, stop := serve(t, l.Handler(), "127.0.0.1:0")
	feed := "http://" + addr + Path + "?after=0&epoch=" + l.epoch + "&wait=20s"
	type result struct {
		a  answer
		at time.Time
	}
	got := make(chan result, 1)
	go func() {
		_, a := getAnswer(t, feed)
		got <- result{a, time.Now()}
	}()
	// The poll is waiting once nothing came back for 200 ms.
	select {
	case r := <-got:
		t.Fatalf("the poll answered before any entry: %+v", r.a)
	case <-time.After(200 * time.Millisecond):
	}
	revoked := time.Now()
	revoke(t, l, sid("a"))
	select {
	case r := <-got:
		if d := r.at.Sub(revoked); d > 100*time.Millisecond || len(r.a.Entries) != 1 {
			t.Errorf("answered %v after the Revoke with %d entries; want within 100ms, 1", d, len(r.a.Entries))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the poll did not answer within 5s of a Revoke")
	}

	go func() {
		_, a := getAnswer(t, "http://"+addr+Path+"?after=1&epoch="+l.epoch+"&wait=20s")
		got <- result{a, time.Now()}
	}()
	time.Sleep(100 * time.Millisecond) // let the poll start waiting
	stopsWithin(t, "shutdown with a poll waiting", stop, got, 2*time.Second, 5*time.Second)
}

// stopsWithin calls stop and fails the test unless done delivers within
// want, or at all within giveUp.
func stopsWithin[T any](t *testing.T, what string, stop func(), done <-chan T, want, giveUp time.Duration) {
	t.Helper()
	start := time.Now()
	stop()
	select {
	case <-done:
		if d := time.Since(start); d > want {
			t.Errorf("%s took %v, want at most %v", what, d, want)
		}
	case <-time.After(giveUp):
		t.Fatalf("%s did not finish within %v", what, giveUp)
	}
}

func revokedSID(set *revocation.Set, s string, now int64) bool {
	return set.Revoked(&session.Envelope{SID: session.HashSID(iss, s)}, now)
}

func leakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		var err error
		if !bintest.Within(5*time.Second, func() bool {
			err = goleak.Find(ignore,
				goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
				goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"))
			return err == nil
		}) {
			t.Error(err)
		}
	})
}

// follow runs f.Follow(set) until the test ends, and checks that it stops
// within a second of its context's end; then closes f.
func follow(t *testing.T, f *Follower, set *revocation.Set) {
	t.Cleanup(func() { f.Close() }) // runs after the check below
	revocationtest.Follow(t, f, set, time.Second)
}

// TestFollowerResumes: a follower applies entries as they are recorded,
// keeps them while the agent restarts on the same port, and gets what was
// recorded meanwhile, without a reset (the log's file keeps its epoch).
func TestFollowerResumes(t *testing.T) {
	leakCheck(t)
	dir := t.TempDir()
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	now := c.unix.Load()
	l := open(t, dir, c)
	addr, stop := serve(t, l.Handler(), "127.0.0.1:0")
	f := NewFollower("http://" + addr + "/")
	f.Wait, f.MaxBackoff = 2*time.Second, 200*time.Millisecond
	set := revocation.NewSet()
	follow(t, f, set)
	revoke(t, l, sid("a"))
	if !bintest.Within(time.Second, func() bool { return revokedSID(set, "a", now) }) {
		t.Fatal("the follower did not apply an entry within 1s")
	}

	stop()
	l.Close()
	l = open(t, dir, c)
	revoke(t, l, sid("b")) // while the feed is down
	syncedBefore := set.Stale(time.Now())
	_, stop = serve(t, l.Handler(), addr)
	if !bintest.Within(3*time.Second, func() bool { return revokedSID(set, "b", now) }) {
		t.Fatal("the follower did not get the entry recorded while the feed was down")
	}
	if !revokedSID(set, "a", now) || set.Len() != 2 || set.Seq() != 2 {
		t.Errorf("after the restart: a revoked %v, Len %d, Seq %d; want true, 2, 2", revokedSID(set, "a", now), set.Len(), set.Seq())
	}
	revoke(t, l, sid("c"))
	if !bintest.Within(time.Second, func() bool { return revokedSID(set, "c", now) }) {
		t.Fatal("the follower did not apply an entry within 1s after the restart")
	}
	if s := set.Stale(time.Now()); s > syncedBefore+time.Second && s > time.Second {
		t.Errorf("Stale %v after the feed came back", s)
	}
	stop()
}

// TestFollowerResets: an agent that keeps its list in memory restarts
// with a new epoch; the follower drops what the old one revoked.
func TestFollowerResets(t *testing.T) {
	leakCheck(t)
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	now := c.unix.Load()
	l := open(t, "", c)
	revoke(t, l, sid("old"))
	addr, stop := serve(t, l.Handler(), "127.0.0.1:0")
	f := NewFollower("http://" + addr)
	f.Wait, f.MaxBackoff = 2*time.Second, 200*time.Millisecond
	set := revocation.NewSet()
	follow(t, f, set)
	if !bintest.Within(time.Second, func() bool { return revokedSID(set, "old", now) }) {
		t.Fatal("the follower did not load the list within 1s")
	}
	stop()
	l2 := open(t, "", c)
	revoke(t, l2, sid("new"))
	_, stop = serve(t, l2.Handler(), addr)
	if !bintest.Within(3*time.Second, func() bool { return revokedSID(set, "new", now) }) {
		t.Fatal("the follower did not follow the new log")
	}
	if revokedSID(set, "old", now) || set.Len() != 1 {
		t.Errorf("after a new epoch: old revoked %v, Len %d; want false, 1", revokedSID(set, "old", now), set.Len())
	}
	stop()
}

// TestFollowerBacksOff: a feed that fails is asked again after a pause
// that doubles, never in a busy loop; the set keeps its entries and goes
// stale.
func TestFollowerBacksOff(t *testing.T) {
	leakCheck(t)
	var polls atomic.Int64
	addr, _ := serve(t, func(ctx *fasthttp.RequestCtx) {
		polls.Add(1)
		ctx.SetStatusCode(500)
	}, "127.0.0.1:0")
	f := NewFollower("http://" + addr)
	f.MaxBackoff = 400 * time.Millisecond // pauses 20, 40, 80, 160, 320, 400, 400 ms...
	set := revocation.NewSet()
	set.Add(sid("kept"))
	set.Synced(time.Now())
	follow(t, f, set)
	time.Sleep(1500 * time.Millisecond)
	if n := polls.Load(); n < 4 || n > 10 {
		t.Errorf("%d polls in 1.5s, want 4 to 10 (backing off up to 400ms)", n)
	}
	if set.Len() != 1 || set.Stale(time.Now()) < time.Second {
		t.Errorf("Len %d, Stale %v; want 1, over 1s", set.Len(), set.Stale(time.Now()))
	}
}

// TestFollowStopsDuringAPoll: cancelling Follow ends a waiting poll at
// once (the cleanup of follow checks it stops within 1s; here 100 ms).
func TestFollowStopsDuringAPoll(t *testing.T) {
	leakCheck(t)
	l := open(t, "", &clock{})
	addr, _ := serve(t, l.Handler(), "127.0.0.1:0")
	f := NewFollower("http://" + addr)
	set := revocation.NewSet()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Follow(ctx, set) }()
	if !bintest.Within(time.Second, func() bool { return set.Stale(time.Now()) < time.Second }) {
		t.Fatal("the follower did not sync")
	}
	time.Sleep(50 * time.Millisecond) // into the 5 s wait
	stopsWithin(t, "stopping Follow", cancel, done, 100*time.Millisecond, 2*time.Second)
	f.Close()
	if _, err := f.Revoke(context.Background(), sid("x")); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Revoke: %v, want ErrReadOnly", err)
	}
}

// TestLogFollow: the agent's own set follows its log directly.
func TestLogFollow(t *testing.T) {
	c := &clock{}
	c.unix.Store(time.Now().Unix())
	now := c.unix.Load()
	l := open(t, "", c)
	revoke(t, l, sid("before"))
	set := revocation.NewSet()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Follow(ctx, set) }()
	revoke(t, l, sid("after"))
	if !bintest.Within(time.Second, func() bool { return revokedSID(set, "before", now) && revokedSID(set, "after", now) }) {
		t.Fatal("the set did not follow the log within 1s")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Follow: %v", err)
	}
	go func() { done <- l.Follow(context.Background(), set) }()
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Follow after Close: %v, want ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Close did not end Follow")
	}
}
