//go:build linux

package park

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// How it works. A Listener takes a connection away from fasthttp once it
// has been idle for a while: the serving goroutine reads a clean end of
// stream and returns, its buffers go back to fasthttp's pools, and the
// socket waits in an epoll set of the listener's own. When the client
// sends its next request, the socket comes back out of Accept and fasthttp
// serves it as a new connection.
//
// A connection is parked only where fasthttp's read buffer is empty: at
// the start of a keep-alive wait (fasthttp's StateIdle hook), before the
// first byte of the next request. Nothing the client sent is lost, and a
// connection that is serving a request is never touched.

// The state of a parkConn is one atomic word: the low two bits are one of
// these, and for connIdle the rest is the sweep epoch in which the
// connection went idle, so that the sweeper's compare-and-swap parks only
// the idle spell it looked at.
const (
	connActive  int64 = iota // serving a request, or a new connection
	connIdle                 // between requests: fasthttp's buffer is empty
	connParking              // the sweeper set a past read deadline to end the wait
	connParked               // the wait ended: Close parks instead of closing

	stateBits = 2
	stateMask = 1<<stateBits - 1
)

// connEpoll is the state of a connection in the epoll set; it is not a
// state of the word's kind, so that the word of a parked connection
// matches none of the sweeper's.
const connEpoll = -1

// longAgo is the read deadline that ends a wait at once.
var longAgo = time.Unix(1, 0)

// Listener is a net.Listener whose connections are parked after being
// idle for a while. It serves one fasthttp.Server, which [Wrap] sets up.
// It is safe for concurrent use and must not be copied.
type Listener struct {
	net.Listener
	tick time.Duration // the sweeper's period: half the idle time before parking
	// workers is the server's MaxIdleWorkerDuration: an idle worker
	// goroutine ends within twice that.
	workers time.Duration

	// ep is the epoll set of parked connections. It is non-blocking and
	// itself waited on by the Go runtime's poller, so the poller goroutine
	// wakes as one reading a socket does; epoll_ctl goes through its
	// Control, so the descriptor cannot close under it.
	ep    *os.File
	epRaw syscall.RawConn

	queue chan net.Conn // accepted and woken connections, for Accept
	errc  chan error    // the underlying Accept's errors
	done  chan struct{} // closed by Close
	once  sync.Once
	wg    sync.WaitGroup // acceptLoop, poll, sweep

	epoch atomic.Int64 // sweeps so far

	mu     sync.Mutex
	closed bool                   // by Close: park no more
	conns  map[*parkConn]struct{} // served by fasthttp
	parked map[uint64]*parkConn   // in the epoll set, by token
	token  uint64                 // the last one given to a parked connection
	total  atomic.Int64           // connections parked since the start
}

// Returning memory. A parked connection's buffers and request context go
// back to fasthttp's sync.Pools, and its goroutine to fasthttp's worker
// pool, which ends it after the server's MaxIdleWorkerDuration (once idle
// for one or two periods). A server with nothing to do allocates little,
// so the runtime's own collections (forced every two minutes) and its
// background scavenger would take minutes to give that memory back. Once
// a burst of parking is over (at least releaseBurst connections parked
// since the last release, fewer than releaseQuiet in the last tick), and
// not more often than every releaseEvery, the sweeper runs two
// collections, the second of which empties the pools' victim caches and
// returns the freed pages to the OS; it does so once more when the idle
// workers of the burst have ended.
const (
	releaseBurst = 256
	releaseQuiet = 64
	releaseEvery = time.Minute
)

// newListener wraps ln so that a connection idle between requests for
// at least after (and less than 1.5 × after) is parked, until its next
// request or the keep-alive deadline fasthttp set for it; workers is the
// server's MaxIdleWorkerDuration. It starts three goroutines, which Close
// ends. Elsewhere than on Linux it fails (park_other.go).
func newListener(ln net.Listener, after, workers time.Duration) (*Listener, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	// NewFile leaves a descriptor the runtime's poller refused blocking;
	// only a polled file has deadlines.
	if err := ep.SetReadDeadline(time.Time{}); err != nil {
		ep.Close()
		return nil, errors.New("the Go runtime's poller does not take an epoll descriptor: " + err.Error())
	}
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	p := &Listener{
		Listener: ln,
		tick:     max(after/2, time.Millisecond),
		workers:  workers,
		ep:       ep,
		epRaw:    raw,
		queue:    make(chan net.Conn, 256),
		errc:     make(chan error),
		done:     make(chan struct{}),
		conns:    make(map[*parkConn]struct{}),
		parked:   make(map[uint64]*parkConn),
	}
	p.wg.Go(p.acceptLoop)
	p.wg.Go(p.poll)
	p.wg.Go(p.sweep)
	return p, nil
}

// Parked returns the number of connections parked now.
func (p *Listener) Parked() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.parked))
}

// Accept returns the next new or woken connection.
func (p *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-p.queue:
		return c, nil
	case err := <-p.errc:
		return nil, err
	case <-p.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener and every parked connection; connections
// fasthttp serves are fasthttp's to close.
func (p *Listener) Close() error {
	var err error
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		close(p.done)
		err = p.Listener.Close()
		p.ep.Close() // ends the poller's wait
		p.wg.Wait()
		p.mu.Lock()
		parked := p.parked
		p.parked = map[uint64]*parkConn{}
		p.mu.Unlock()
		for _, c := range parked {
			c.Conn.Close()
		}
		for {
			select {
			case c := <-p.queue: // accepted or woken, never handed out
				c.Close() // active: closes
			default:
				return
			}
		}
	})
	return err
}

// epollCtl runs epoll_ctl on the epoll set, unless it is closed.
func (p *Listener) epollCtl(op, fd int, ev *syscall.EpollEvent) error {
	var err error
	if cerr := p.epRaw.Control(func(epfd uintptr) { err = syscall.EpollCtl(int(epfd), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

// acceptLoop hands the underlying listener's connections to Accept.
func (p *Listener) acceptLoop() {
	for {
		nc, err := p.Listener.Accept()
		if err != nil {
			select {
			case p.errc <- err:
			case <-p.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c := p.wrap(nc)
		select {
		case p.queue <- c:
		case <-p.done:
			c.Close()
			return
		}
	}
}

// wrap returns nc as a parkConn, or as it is when it has no file
// descriptor to wait on.
func (p *Listener) wrap(nc net.Conn) net.Conn {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nc
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nc
	}
	fd := -1
	if raw.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
		return nc
	}
	c := &parkConn{Conn: nc, p: p, fd: fd}
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	return c
}

// ConnState is the fasthttp.Server's ConnState hook, which Wrap sets.
func (p *Listener) ConnState(nc net.Conn, s fasthttp.ConnState) {
	c, ok := nc.(*parkConn)
	if !ok {
		return
	}
	switch s {
	case fasthttp.StateIdle:
		// fasthttp sets the keep-alive deadline and waits for the next
		// request's first byte next; if its buffer still holds one (a
		// pipelined request), StateActive comes before any Read.
		c.word.Store(p.epoch.Load()<<stateBits | connIdle)
	case fasthttp.StateActive:
		w := c.word.Load()
		if w&stateMask == connIdle && c.word.CompareAndSwap(w, connActive) {
			return
		}
		if c.word.Load() == connParking {
			c.settle(1, nil)
		}
	}
}

// park takes c, whose serving goroutine has ended, into the epoll set. It
// reports false when c must be closed instead.
func (p *Listener) park(c *parkConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.token++
	// The event carries the token, not the descriptor: an event read
	// before its connection expired must not wake another that has since
	// got the same descriptor.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd: int32(uint32(p.token)), Pad: int32(uint32(p.token >> 32))}
	if p.epollCtl(syscall.EPOLL_CTL_ADD, c.fd, &ev) != nil {
		return false
	}
	delete(p.conns, c)
	c.token = p.token
	c.until = c.rdl // fasthttp's keep-alive deadline; zero: none
	p.parked[c.token] = c
	p.total.Add(1)
	return true
}

// takeLocked takes the connection of token out of the epoll set, or
// returns nil if it is not parked (any more). p.mu is held.
func (p *Listener) takeLocked(token uint64) *parkConn {
	c := p.parked[token]
	if c != nil {
		delete(p.parked, token)
		p.epollCtl(syscall.EPOLL_CTL_DEL, c.fd, nil)
	}
	return c
}

// unpark takes the connection of token out of the epoll set and back
// among those fasthttp serves, or returns nil if it is not parked (any
// more).
func (p *Listener) unpark(token uint64) *parkConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.takeLocked(token)
	if c != nil {
		p.conns[c] = struct{}{}
	}
	return c
}

// poll hands parked connections that became readable (a request, or the
// client's close) back to Accept.
func (p *Listener) poll() {
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		err := p.epRaw.Read(func(epfd uintptr) bool {
			var werr error
			n, werr = syscall.EpollWait(int(epfd), events, 0)
			// Nothing ready: wait until the set is readable.
			return werr == nil && n > 0
		})
		if err != nil { // only Close ends the wait: the poller itself cannot fail
			return
		}
		for _, ev := range events[:n] {
			if !p.wake(p.unpark(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32)) {
				return
			}
		}
	}
}

// wake hands c, just out of the epoll set, to Accept; it reports false
// when the listener has closed.
func (p *Listener) wake(c *parkConn) bool {
	if c == nil {
		return true
	}
	c.fresh = true
	c.word.Store(connActive)
	c.Conn.SetReadDeadline(time.Time{}) // fasthttp sets its own for a new connection
	select {
	case p.queue <- c:
		return true
	case <-p.done:
		c.close()
		return false
	}
}

// sweep parks the connections idle for two ticks or more, closes the
// parked ones whose keep-alive deadline has passed, and returns memory
// after a burst.
func (p *Listener) sweep() {
	t := time.NewTicker(p.tick)
	defer t.Stop()
	type candidate struct {
		c *parkConn
		w int64
	}
	var park []candidate
	var expired []*parkConn
	var sinceRelease, total int64 // parks since the last release; p.total at the last sweep
	var last, again time.Time     // the last release; when to release once more, or zero
	for {
		var now time.Time
		select {
		case <-p.done:
			return
		case now = <-t.C:
		}
		e := p.epoch.Add(1)
		park, expired = park[:0], expired[:0]
		p.mu.Lock()
		if !p.closed {
			for c := range p.conns {
				// connParking: fasthttp's own deadline overtook ours: again.
				if w := c.word.Load(); w&stateMask == connIdle && w>>stateBits <= e-3 || w == connParking {
					park = append(park, candidate{c, w})
				}
			}
			for token, c := range p.parked {
				if !c.until.IsZero() && now.After(c.until) {
					expired = append(expired, p.takeLocked(token))
				}
			}
		}
		p.mu.Unlock()
		for _, k := range park {
			k.c.requestPark(k.w)
		}
		for _, c := range expired {
			c.Conn.Close()
		}
		clear(park)
		clear(expired)

		n := p.total.Load() - total
		total += n
		switch sinceRelease += n; {
		case sinceRelease >= releaseBurst && n < releaseQuiet && now.Sub(last) >= releaseEvery:
			release()
			sinceRelease, last, again = 0, now, now.Add(2*p.workers+p.tick)
		case !again.IsZero() && now.After(again):
			release()
			again = time.Time{}
		}
	}
}

// release frees what parked connections left behind and returns it to the
// OS: the first collection moves sync.Pool contents to their victim caches,
// the second (in FreeOSMemory) frees them and scavenges.
func release() {
	runtime.GC()
	debug.FreeOSMemory()
}

// parkConn is a connection of a Listener.
type parkConn struct {
	net.Conn
	p  *Listener
	fd int

	word atomic.Int64 // state and idle epoch, or connEpoll
	// mu orders the sweeper's past read deadline before the serving
	// goroutine's restoring of its own.
	mu    sync.Mutex
	rdl   time.Time // the read deadline fasthttp last set; its goroutine's alone
	fresh bool      // woken, not read from since; its goroutine's alone
	token uint64    // in the epoll set; p.mu
	until time.Time // in the epoll set: when it is closed, or zero; p.mu
}

// requestPark ends c's keep-alive wait if c is still in the idle spell w
// (or a park request's deadline was overtaken): its blocked Read returns
// a timeout, which Read turns into the end of the stream.
func (c *parkConn) requestPark(w int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.word.CompareAndSwap(w, connParking) {
		c.Conn.SetReadDeadline(longAgo)
	}
}

func (c *parkConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.fresh {
		c.fresh = false
		// A woken connection is new to fasthttp, which answers a failed
		// first read with an error response and a log line; it was a
		// keep-alive wait ending, which closes quietly.
		if n == 0 && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ETIMEDOUT)) {
			return 0, io.EOF
		}
	}
	if w := c.word.Load(); w != connActive {
		if w&stateMask != connIdle || !c.word.CompareAndSwap(w, connActive) {
			return c.settle(n, err)
		}
	}
	return n, err
}

// settle ends a park request with what the wait read: nothing but the
// sweeper's timeout parks the connection (the serving goroutine gets
// io.EOF, and closes it); anything else lets the request go on under the
// deadline fasthttp set, or ends the connection as fasthttp would.
func (c *parkConn) settle(n int, err error) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.word.Load() != connParking {
		return n, err
	}
	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() && (c.rdl.IsZero() || time.Now().Before(c.rdl)) {
		c.word.Store(connParked)
		return 0, io.EOF
	}
	c.word.Store(connActive)
	c.Conn.SetReadDeadline(c.rdl)
	return n, err
}

func (c *parkConn) SetReadDeadline(t time.Time) error {
	c.rdl = t
	if c.word.Load() == connParking {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.word.Load() == connParking {
			return nil // keep the sweeper's; settle restores t
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *parkConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

// ReadFrom writes what r reads as it comes, as the wrapped connection's
// own ReadFrom does (a TCP connection's): fasthttp streams a response body
// through bufio.Writer.ReadFrom, which otherwise holds back the tail of
// what it read in its buffer while the next read waits.
func (c *parkConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok { // TCP and Unix connections
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r) // the struct hides c's ReadFrom
}

// Close parks c when its wait ended for parking, and closes it otherwise;
// closing a parked connection again does nothing (the listener closes it).
func (c *parkConn) Close() error {
	if c.word.CompareAndSwap(connParked, connEpoll) {
		if c.p.park(c) {
			return nil
		}
		c.word.Store(connActive)
	} else if c.word.Load() == connEpoll {
		return nil
	}
	return c.close()
}

func (c *parkConn) close() error {
	c.p.mu.Lock()
	delete(c.p.conns, c)
	c.p.mu.Unlock()
	return c.Conn.Close()
}
