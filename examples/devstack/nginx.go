package main

import (
	"context"
	"fmt"

	"github.com/tokenhandler/tokenhandler/nginx"
)

// startNGINX runs NGINX in front of the agent and the proxy, in upstream
// mode (harness.StartNGINX), on the NGINX port: a server block per
// application, on its API host (nginx.Params.Apps), which passes the Host
// on so that the agent and the proxy pick the same application. Its exit
// before the stack stops it goes to s.Failed.
func (s *stack) startNGINX(p ports, apps []app) error {
	if _, err := s.StartNGINX(context.Background(), "nginx", nginx.ModeUpstream, nginxParams(p, apps)); err != nil {
		return fmt.Errorf("-nginx: %w", err)
	}
	return nil
}

// nginxParams renders NGINX for the stack's applications.
func nginxParams(p ports, apps []app) nginx.Params {
	np := nginx.Params{
		WorkerProcesses: 1,
		Listen:          fmt.Sprintf("127.0.0.1:%d", p.nginx),
		Agents:          []string{fmt.Sprintf("127.0.0.1:%d", p.agent)},
		Proxies:         []string{fmt.Sprintf("127.0.0.1:%d", p.proxy)},
	}
	for _, a := range apps {
		np.Apps = append(np.Apps, nginx.App{Name: a.name, ServerNames: []string{a.apiHost}, CookiePrefix: a.prefix})
	}
	return np
}
