//go:build !linux

package park

import (
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Listener parks idle connections on Linux only (park_linux.go); here
// [Wrap] fails and none is made.
type Listener struct{ net.Listener }

func newListener(net.Listener, time.Duration, time.Duration) (*Listener, error) {
	return nil, errors.New("parking idle connections needs Linux (epoll)")
}

func (p *Listener) ConnState(net.Conn, fasthttp.ConnState) {}

// Parked returns the number of connections parked now: none.
func (p *Listener) Parked() int64 { return 0 }
