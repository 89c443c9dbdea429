// Command run is the k6 load tests' orchestrator (make loadtest, make soak,
// make soak-short). On free loopback ports it starts the demo API, the OAuth
// Proxy as its own processes (built from cmd/oauth-proxy, upstream mode),
// real NGINX rendered with nginx.Render("upstream", ...) in front of them,
// and the development OpenID Provider with the OAuth Agent (for the
// login-plus-refresh flow); it mints realistic cookies with thctl, runs
// k6 on one script of loadtest/ and fails when k6 fails its thresholds.
//
//	go run ./loadtest/run -script smoke                 # make loadtest
//	go run ./loadtest/run -script soak -duration 60s    # make soak-short
//	go run ./loadtest/run -script load -rate 500 -duration 2m
//
// With -script soak it also reads the proxies' RSS at start and end, rotates
// the cookie keys with SIGHUP mid-run and stops one proxy with SIGTERM near
// the end (see soak.go and loadtest/README.md).
//
// Everything listens on 127.0.0.1 only, every run is bounded by -duration,
// and every process it starts is stopped, by its own PID, before it exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	script   string        // smoke, load, spike, soak or login
	k6       string        // the k6 binary
	duration time.Duration // k6's run time (load, spike, soak, login)
	rate     int           // requests per second (load, soak), base rate (spike), logins per second (login)
	workers  int           // NGINX worker processes
	rssBound int64         // soak: largest RSS growth allowed, bytes
	direct   bool          // soak: SIGTERM a proxy NGINX still sends requests to
	verbose  bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var rssMiB int64
	fs.StringVar(&o.script, "script", "smoke", "k6 script of loadtest/: smoke, load, spike, soak or login")
	fs.StringVar(&o.k6, "k6", "bin/k6", "the k6 binary (make loadtest installs v1.8.1 there)")
	fs.DurationVar(&o.duration, "duration", 0, "how long k6 runs (default: the script's own: load 60s, spike 50s, soak 10m, login 30s; smoke is fixed)")
	fs.IntVar(&o.rate, "rate", 0, "requests per second (load, soak), the base rate (spike), logins per second (login); default: the script's")
	fs.IntVar(&o.workers, "nginx-workers", 1, "NGINX worker processes")
	fs.Int64Var(&rssMiB, "rss-bound", 20, "soak: MiB the surviving proxy's RSS may grow between start and end")
	fs.BoolVar(&o.direct, "direct-sigterm", false, "soak: send SIGTERM to a proxy NGINX still routes to, without taking it out of NGINX first (a POST can then meet a closing keep-alive connection: see loadtest/README.md)")
	fs.BoolVar(&o.verbose, "v", false, "print the proxies' and NGINX's logs at the end")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.rssBound = rssMiB << 20
	switch o.script {
	case "smoke", "load", "spike", "soak", "login":
	default:
		fmt.Fprintf(stderr, "loadtest: -script %q: want smoke, load, spike, soak or login\n", o.script)
		return 2
	}
	if _, err := os.Stat(o.k6); err != nil {
		fmt.Fprintf(stderr, "loadtest: k6 not found at %s: run `make loadtest`, which installs it, or pass -k6\n", o.k6)
		return 1
	}

	// Ctrl-C and SIGTERM end the run early; either way every process
	// started is stopped.
	ctx, cancel := context.WithTimeout(context.Background(), o.limit())
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	started := time.Now()
	err := runScript(ctx, o, stdout, stderr)
	fmt.Fprintf(stdout, "loadtest: %s took %s\n", o.script, time.Since(started).Round(100*time.Millisecond))
	if err != nil {
		fmt.Fprintln(stderr, "loadtest: FAIL:", err)
		return 1
	}
	fmt.Fprintln(stdout, "loadtest: PASS")
	return 0
}

// limit is a hard bound on the whole run: the script's duration plus
// start-up and drain.
func (o options) limit() time.Duration {
	limit := 3 * time.Minute
	if o.duration > 0 {
		limit += o.duration
	} else if o.script == "soak" {
		limit += 10 * time.Minute
	}
	return limit
}

func runScript(ctx context.Context, o options, stdout, stderr io.Writer) (err error) {
	proxies := 1
	if o.script == "soak" {
		proxies = 2 // one is stopped with SIGTERM near the end; NGINX carries on with the other
	}
	var st *stack
	st, err = startStack(ctx, o, proxies, stdout)
	defer func() {
		if st != nil {
			st.Stop(stdout, o.verbose || err != nil)
		}
	}()
	if err != nil {
		return err
	}
	if o.script == "soak" {
		return soak(ctx, st, o, stdout, stderr)
	}
	return st.k6(ctx, o, nil, stdout, stderr)
}
