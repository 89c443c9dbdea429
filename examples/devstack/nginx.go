package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

// errNoNGINX is the answer to -nginx without NGINX.
var errNoNGINX = errors.New("-nginx needs NGINX, which was not found: apt-get install -y nginx (or set NGINX=/path/to/nginx)")

// nginxBinary finds NGINX (nginxtest.Find).
func nginxBinary() (string, error) {
	if p, err := nginxtest.Find(); err == nil {
		return p, nil
	}
	return "", errNoNGINX
}

// startNGINX runs NGINX in front of the agent and the proxy, in upstream
// mode (nginxtest.Run), on api.example.localhost's NGINX port: a whole
// nginx.conf in a temporary directory that also holds its pid file, logs
// and temporary files, and NGINX in the foreground (daemon off), so that
// the stack stops it.
func (s *stack) startNGINX(bin string, p ports) error {
	n, err := nginxtest.Run(context.Background(), bin, nginx.ModeUpstream, nginx.Params{
		WorkerProcesses: 1,
		Listen:          fmt.Sprintf("127.0.0.1:%d", p.nginx),
		Agents:          []string{fmt.Sprintf("127.0.0.1:%d", p.agent)},
		Proxies:         []string{fmt.Sprintf("127.0.0.1:%d", p.proxy)},
	})
	if err != nil {
		return err
	}
	var stopping atomic.Bool
	go func() {
		<-n.Exited()
		if !stopping.Load() {
			s.failed <- fmt.Errorf("NGINX exited (%v):\n%s", n.ExitErr(), n.Log())
		}
	}()
	s.stops = append(s.stops, func(ctx context.Context) {
		stopping.Store(true)
		n.Stop(ctx)
	})
	return nil
}
