package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/tokenhandler/tokenhandler/nginx"
)

// startNGINX runs NGINX in front of the agent and the proxy, in upstream
// mode (harness.StartNGINX), on api.example.localhost's NGINX port; its
// exit before the stack stops it goes to s.failed.
func (s *stack) startNGINX(p ports) error {
	n, err := s.StartNGINX(context.Background(), "nginx", nginx.ModeUpstream, nginx.Params{
		WorkerProcesses: 1,
		Listen:          fmt.Sprintf("127.0.0.1:%d", p.nginx),
		Agents:          []string{fmt.Sprintf("127.0.0.1:%d", p.agent)},
		Proxies:         []string{fmt.Sprintf("127.0.0.1:%d", p.proxy)},
	})
	if err != nil {
		return fmt.Errorf("-nginx: %w", err)
	}
	var stopping atomic.Bool
	s.OnStop(func() { stopping.Store(true) }) // runs before NGINX's stop
	go func() {
		<-n.Exited()
		if !stopping.Load() {
			s.failed <- fmt.Errorf("NGINX exited (%v):\n%s", n.ExitErr(), n.Log())
		}
	}()
	return nil
}
