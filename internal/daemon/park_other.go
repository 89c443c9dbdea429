//go:build !linux

package daemon

import (
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// parkListener parks idle connections on Linux only (park_linux.go).
type parkListener struct{ net.Listener }

func newParkListener(net.Listener, time.Duration, time.Duration) (*parkListener, error) {
	return nil, errors.New("parking idle connections needs Linux (epoll)")
}

func (p *parkListener) connState(net.Conn, fasthttp.ConnState) {}

// Parked returns the number of connections parked now: none.
func (p *parkListener) Parked() int64 { return 0 }
