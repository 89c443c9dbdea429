package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/proxy"
)

// profile serves the proxy of one variant in this process (the production
// handler and server, proxy.NewServer) with NGINX in front as the variant
// has it, loads it with wrk for -duration, and writes a CPU profile of
// this process to -o: the proxy, the API and the harness's own goroutines,
// which the profile's top lists apart. It then prints `go tool pprof -top`.
func profile(ctx context.Context, o options, w io.Writer) (err error) {
	if o.out == "" {
		return fmt.Errorf("-cpuprofile needs -o FILE for the profile")
	}
	s, err := startStack(ctx, w, o.proxyEnv)
	defer s.stop(w, o.verbose, &err)
	if err != nil {
		return err
	}
	var mode string
	unix := strings.HasSuffix(o.cpuProfile, "-unix")
	switch strings.TrimSuffix(strings.TrimSuffix(o.cpuProfile, "-tcp"), "-unix") {
	case "upstream":
		mode = nginx.ModeUpstream
	case "auth_request":
		mode = nginx.ModeAuthRequest
	case "edge", "idle":
	default:
		return fmt.Errorf("-cpuprofile %q: want upstream-tcp, upstream-unix, auth_request-tcp, auth_request-unix, edge or idle", o.cpuProfile)
	}
	listen := "unix:" + filepath.Join(s.Dir, "proxy.sock")
	if !unix {
		if listen, err = harness.FreeAddr(); err != nil {
			return err
		}
	}
	extra := ""
	if mode == "" { // edge and idle: browsers reach the proxy, which parks as in edge mode (timeouts.park's default for a non-loopback listener, proxy/config.go)
		extra = "timeouts: {park: 1s}\n"
	}
	cfg, err := proxy.ParseConfig(s.proxyConfig(listen, extra), os.Getenv)
	if err != nil {
		return err
	}
	srv, err := proxy.NewServer(cfg, zerolog.New(os.Stderr).Level(zerolog.WarnLevel))
	if err != nil {
		return err
	}
	s.Serve("oauth-proxy", srv.Serve, srv.Shutdown)
	addr := listen
	if mode != "" {
		ngx, err := s.startNGINX(ctx, "nginx", mode, o.nginxWorkers, 1, []string{listen}, []string{s.api})
		if err != nil {
			return err
		}
		addr = ngx.Addr()
	}
	headers := [][2]string{{"Host", apiHost}, {"Origin", origin}, {"Cookie", cookiePrefix + "-at=" + s.at}}
	if code, err := probe(addr, headers); err != nil || code != 200 {
		return fmt.Errorf("a GET got %d (%v), want 200", code, err)
	}
	if o.cpuProfile == "idle" {
		return idleProfile(ctx, o, addr, headers, w)
	}
	if _, err := runWrk(ctx, o.wrk, o.threads, o.conns, 2*time.Second, addr, headers); err != nil {
		return err
	}
	f, err := os.Create(o.out)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	res, err := runWrk(ctx, o.wrk, o.threads, o.conns, o.duration, addr, headers)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "bench: %s with the proxy in-process: %.0f req/s; profile in %s\n\n", o.cpuProfile, res.rps, o.out)
	top := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=40", o.out)
	top.Stdout, top.Stderr = w, w
	return top.Run()
}

// idleProfile holds -idle keep-alive connections to the in-process proxy at
// addr, each served one GET, and writes a heap profile to -o; it prints the
// runtime's memory statistics and `go tool pprof -top` of the heap in use.
// The connections' client ends hold no goroutine and little heap, so what
// grows is the proxy's.
func idleProfile(ctx context.Context, o options, addr string, headers [][2]string, w io.Writer) error {
	var before, during runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	return holdIdle(ctx, addr, headers, o.idle, func() error {
		runtime.GC()
		runtime.ReadMemStats(&during)
		mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
		fmt.Fprintf(w, "bench: %d idle connections: heap in use %.1f → %.1f MiB, goroutine stacks %.1f → %.1f MiB, from the OS %.1f → %.1f MiB; goroutines %d\n\n",
			o.idle, mib(before.HeapInuse), mib(during.HeapInuse), mib(before.StackInuse), mib(during.StackInuse), mib(before.Sys), mib(during.Sys), runtime.NumGoroutine())
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
		top := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=25", "-sample_index=inuse_space", o.out)
		top.Stdout, top.Stderr = w, w
		return top.Run()
	})
}
