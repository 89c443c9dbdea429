//go:build linux

package daemon

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

// Parking. fasthttp serves each connection with a goroutine that keeps its
// RequestCtx and read buffer while the connection waits, idle, for the
// next keep-alive request: about 28 KiB a connection with the proxy's
// 16 KiB header buffer, 280 MiB for 10,000 browsers that keep their
// connections open between API calls. A parking listener takes such a
// connection away from fasthttp once it has been idle for a while: the
// serving goroutine reads a clean end of stream and returns, its buffers
// go back to fasthttp's pools, and the socket waits in an epoll set of the
// listener's own. When the client sends its next request, the socket
// comes back out of Accept and fasthttp serves it as a new connection.
//
// A connection is parked only where fasthttp's read buffer is empty: at
// the start of a keep-alive wait (fasthttp's StateIdle hook), before the
// first byte of the next request. Nothing the client sent is lost, and a
// connection that is serving a request is never touched.

// The states of a parkConn.
const (
	connActive  int32 = iota // serving a request, or a new connection
	connIdle                 // between requests: fasthttp's buffer is empty
	connParking              // the sweeper set a past read deadline to end the wait
	connParked               // the wait ended: Close parks instead of closing
)

// longAgo is the read deadline that ends a wait at once.
var longAgo = time.Unix(1, 0)

// parkListener is a net.Listener whose connections are parked after
// being idle for a while. It serves one fasthttp.Server, whose ConnState
// must be its connState.
type parkListener struct {
	net.Listener
	tick time.Duration // the sweeper's period: half the idle time before parking
	idle time.Duration // a parked connection is closed this long after it went idle
	// workers is the server's MaxIdleWorkerDuration: an idle worker
	// goroutine ends within twice that.
	workers time.Duration

	// ep is the epoll set of parked connections, by file descriptor. It
	// is non-blocking and itself waited on by the Go runtime's poller, so
	// the poller goroutine wakes as one reading a socket does; epoll_ctl
	// goes through its Control, so the descriptor cannot close under it.
	ep    *os.File
	epRaw syscall.RawConn

	queue chan net.Conn // accepted and woken connections, for Accept
	errc  chan error    // the underlying Accept's errors
	done  chan struct{} // closed by Close
	once  sync.Once
	wg    sync.WaitGroup // acceptLoop, poll, sweep

	epoch atomic.Int64 // sweeps so far

	mu     sync.Mutex
	closed bool
	conns  map[*parkConn]struct{} // served by fasthttp
	parked map[int32]*parkConn    // waiting in the epoll set
	count  atomic.Int64           // len(parked), for the gauge
	parks  atomic.Int64           // connections parked since the last sweep
}

// Returning memory. A parked connection's buffers and request context go
// back to fasthttp's sync.Pools, and its goroutine to fasthttp's worker
// pool, which ends it after the server's MaxIdleWorkerDuration (ended
// once idle for one or two periods). An idle server allocates nothing,
// though, so no GC runs to free any of it and the process would keep the
// memory of its busiest moment. Once a burst of parking is over (at least
// releaseBurst connections parked since the last release, fewer than
// releaseQuiet in the last tick), the sweeper runs two collections, the
// second of which empties the pools' victim caches and returns the freed
// pages to the OS; it does so once more when the idle workers of the
// burst have ended.
const (
	releaseBurst = 256
	releaseQuiet = 64
)

// newParkListener wraps ln so that a connection idle between requests for
// at least after (and less than 1.5 × after) is parked, and a parked one
// is closed idle after it went idle; workers is the server's
// MaxIdleWorkerDuration. It starts three goroutines, which Close ends.
func newParkListener(ln net.Listener, after, idle, workers time.Duration) (*parkListener, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	raw, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	p := &parkListener{
		Listener: ln,
		tick:     after / 2,
		idle:     idle,
		workers:  workers,
		ep:       ep,
		epRaw:    raw,
		queue:    make(chan net.Conn, 256),
		errc:     make(chan error),
		done:     make(chan struct{}),
		conns:    make(map[*parkConn]struct{}),
		parked:   make(map[int32]*parkConn),
	}
	p.wg.Add(3)
	go p.acceptLoop()
	go p.poll()
	go p.sweep()
	return p, nil
}

// Parked returns the number of connections parked now.
func (p *parkListener) Parked() int64 { return p.count.Load() }

// Accept returns the next new or woken connection.
func (p *parkListener) Accept() (net.Conn, error) {
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
func (p *parkListener) Close() error {
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
		p.parked = map[int32]*parkConn{}
		p.count.Store(0)
		p.mu.Unlock()
		for _, c := range parked {
			c.Conn.Close()
		}
		for {
			select {
			case c := <-p.queue: // accepted or woken, never handed out
				c.Close() // active: closes
				continue
			default:
			}
			break
		}
	})
	return err
}

// epollCtl runs epoll_ctl on the epoll set, unless it is closed.
func (p *parkListener) epollCtl(op, fd int, ev *syscall.EpollEvent) error {
	var err error
	if cerr := p.epRaw.Control(func(epfd uintptr) { err = syscall.EpollCtl(int(epfd), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

// acceptLoop hands the underlying listener's connections to Accept.
func (p *parkListener) acceptLoop() {
	defer p.wg.Done()
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
func (p *parkListener) wrap(nc net.Conn) net.Conn {
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

// connState is the fasthttp.Server's ConnState hook.
func (p *parkListener) connState(nc net.Conn, s fasthttp.ConnState) {
	c, ok := nc.(*parkConn)
	if !ok {
		return
	}
	switch s {
	case fasthttp.StateIdle:
		// fasthttp sets the keep-alive deadline and waits for the next
		// request's first byte next; if its buffer still holds one (a
		// pipelined request), StateActive comes before any Read.
		c.since.Store(p.epoch.Load())
		c.state.Store(connIdle)
	case fasthttp.StateActive:
		if !c.state.CompareAndSwap(connIdle, connActive) && c.state.Load() == connParking {
			c.settle(1, nil)
		}
	}
}

// park takes c, whose serving goroutine has ended, into the epoll set. It
// reports false when c must be closed instead.
func (p *parkListener) park(c *parkConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	delete(p.conns, c)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(c.fd)}
	if p.epollCtl(syscall.EPOLL_CTL_ADD, c.fd, &ev) != nil {
		return false
	}
	c.until = time.Now().Add(p.idle - 2*p.tick)
	p.parked[int32(c.fd)] = c
	p.count.Add(1)
	p.parks.Add(1)
	return true
}

// unpark takes the connection on fd out of the epoll set, or returns nil
// if it is not parked (any more).
func (p *parkListener) unpark(fd int32) *parkConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.parked[fd]
	if c == nil {
		return nil
	}
	delete(p.parked, fd)
	p.count.Add(-1)
	p.epollCtl(syscall.EPOLL_CTL_DEL, c.fd, nil)
	if !p.closed {
		p.conns[c] = struct{}{}
	}
	return c
}

// poll hands parked connections that became readable (a request, or the
// client's close) back to Accept.
func (p *parkListener) poll() {
	defer p.wg.Done()
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		err := p.epRaw.Read(func(epfd uintptr) bool {
			var werr error
			n, werr = syscall.EpollWait(int(epfd), events, 0)
			// Nothing ready (or EINTR): wait until the set is readable.
			return werr == nil && n > 0
		})
		if err != nil {
			return // closed
		}
		for _, ev := range events[:n] {
			c := p.unpark(ev.Fd)
			if c == nil {
				continue
			}
			c.state.Store(connActive)
			c.Conn.SetReadDeadline(time.Time{}) // fasthttp sets its own for a new connection
			select {
			case p.queue <- c:
			case <-p.done:
				c.close()
				return
			}
		}
	}
}

// sweep parks the connections idle for two ticks or more, and closes the
// parked ones whose idle timeout has passed.
func (p *parkListener) sweep() {
	defer p.wg.Done()
	t := time.NewTicker(p.tick)
	defer t.Stop()
	var park, expired []*parkConn
	var sinceRelease int64
	var again time.Time // when to release once more, or zero
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
		for c := range p.conns {
			switch c.state.Load() {
			case connIdle:
				if c.since.Load() <= e-3 {
					park = append(park, c)
				}
			case connParking: // fasthttp's own deadline overtook ours: again
				park = append(park, c)
			}
		}
		for fd, c := range p.parked {
			if now.After(c.until) {
				delete(p.parked, fd)
				p.count.Add(-1)
				p.epollCtl(syscall.EPOLL_CTL_DEL, c.fd, nil)
				expired = append(expired, c)
			}
		}
		p.mu.Unlock()
		for _, c := range park {
			c.requestPark()
		}
		for _, c := range expired {
			c.Conn.Close()
		}
		clear(park)
		clear(expired)
		n := p.parks.Swap(0)
		switch sinceRelease += n; {
		case sinceRelease >= releaseBurst && n < releaseQuiet:
			release()
			sinceRelease, again = 0, now.Add(2*p.workers+p.tick)
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

// parkConn is a connection of a parkListener.
type parkConn struct {
	net.Conn
	p  *parkListener
	fd int

	state atomic.Int32 // conn*
	since atomic.Int64 // the sweep epoch in which it went idle
	// mu orders the sweeper's past read deadline before the serving
	// goroutine's restoring of its own.
	mu    sync.Mutex
	rdl   time.Time // the read deadline fasthttp last set; its goroutine's alone
	until time.Time // parked: when it is closed; p.mu
}

// requestPark ends c's keep-alive wait, if c is still idle: its blocked
// Read returns a timeout, which Read turns into the end of the stream.
func (c *parkConn) requestPark() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.CompareAndSwap(connIdle, connParking) || c.state.Load() == connParking {
		c.Conn.SetReadDeadline(longAgo)
	}
}

func (c *parkConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.state.Load() != connActive && !c.state.CompareAndSwap(connIdle, connActive) {
		return c.settle(n, err)
	}
	return n, err
}

// settle ends a park request with what the wait read: nothing but the
// timeout parks the connection (the serving goroutine gets io.EOF, and
// closes it); anything else lets the request go on under the deadline
// fasthttp set.
func (c *parkConn) settle(n int, err error) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() {
		c.state.Store(connParked)
		return 0, io.EOF
	}
	c.state.Store(connActive)
	c.Conn.SetReadDeadline(c.rdl)
	return n, err
}

func (c *parkConn) SetReadDeadline(t time.Time) error {
	c.rdl = t
	if c.state.Load() == connParking {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.state.Load() == connParking {
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
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	return io.CopyBuffer(writerOnly{c.Conn}, r, *buf)
}

// writerOnly hides a writer's ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Close parks c when its wait ended for parking, and closes it otherwise.
func (c *parkConn) Close() error {
	if c.state.Load() == connParked && c.p.park(c) {
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
