// Package park parks the idle keep-alive connections of a fasthttp server
// in an epoll set of its own (Linux), so that a connection waiting for its
// client's next request holds no goroutine, request context or buffers:
// the oauth-proxy's edge mode uses it when browsers connect to it directly.
//
// What it saves: fasthttp keeps, per idle keep-alive connection, its
// goroutine, RequestCtx and read buffer (the proxy streams request bodies,
// so fasthttp's ReduceMemoryUsage cannot release that buffer). With the
// proxy's 16 KiB header limit, 10,000 idle browser connections cost 289 MiB
// of RSS without parking, 245 MiB with ReduceMemoryUsage and a 4 KiB write
// buffer, and 39 MiB parked (docs/benchmarks.md, "Idle connections").
//
// What it costs: about 550 lines of epoll code that wraps every connection
// (fasthttp writes a buffered response larger than its write buffer with
// one writev only to a *net.TCPConn or *net.UnixConn, so through the
// wrapper such a response takes two writes); a request on a parked
// connection is served by a new goroutine (BenchmarkWake); idle worker
// goroutines end after the parking time instead of fasthttp's 10 s; and,
// once a burst of parking is over, at most once a minute, a process-wide
// runtime.GC and debug.FreeOSMemory to give the freed memory back to the
// OS at once rather than minutes later.
//
// When to use it: when many clients hold keep-alive connections open and
// mostly idle, as browsers do against a proxy they reach directly. Behind
// NGINX there are a few dozen upstream keep-alive connections (keepalive
// 64) and nothing to save, so the proxy's timeouts.park is 0 (off) by
// default for a listener on a Unix socket or a loopback address, which only
// a reverse proxy on the same host reaches.
package park

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Wrap returns ln wrapped so that srv's keep-alive connections idle for
// after (up to 1.5 times as long) are parked until their next request. It
// sets srv's ConnState hook, and its MaxIdleWorkerDuration to after but at
// least 1 s, so that the worker goroutines parked connections leave behind
// end within twice that. Call it before srv serves the returned Listener;
// Close the Listener after srv's Shutdown: that closes the parked
// connections and ends its goroutines. On error, ln and srv are unchanged.
func Wrap(ln net.Listener, srv *fasthttp.Server, after time.Duration) (*Listener, error) {
	workers := max(after, time.Second)
	pl, err := newListener(ln, after, workers)
	if err != nil {
		return nil, err
	}
	srv.MaxIdleWorkerDuration = workers
	srv.ConnState = pl.ConnState
	return pl, nil
}
