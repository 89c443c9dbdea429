// Command run is the end-to-end benchmark (make bench-e2e). On loopback it
// starts one API (fasthttp, 40 bytes of JSON), NGINX in front of it alone
// (the baseline), oauth-proxy in upstream and auth_request mode behind
// NGINX over TCP and over a Unix socket, oauth-proxy alone (edge mode) and
// oauth2-proxy with a cookie session, and measures them all in one run:
//
//   - throughput at saturation with wrk (fixed threads and connections),
//     several rounds, the variants interleaved in each round, median;
//   - latency p50/p99/p99.9 at a fixed rate of a quarter of the baseline's
//     median throughput, from an open-loop generator in this process;
//   - CPU µs of the token-handler process (and of NGINX) per request, from
//     /proc/<pid>/stat around the wrk rounds, and the whole machine's
//     context switches per request, from /proc/stat;
//   - peak RSS (VmHWM) of the token-handler process;
//   - the RSS of a fresh oauth-proxy holding 10,000 idle keep-alive
//     connections.
//
// It prints a markdown section (machine, command, table, targets) for
// docs/benchmarks.md.
//
//	go run ./bench/run                          # make bench-e2e
//	go run ./bench/run -rounds 3 -duration 5s -oauth2-proxy ''   # shorter, without the peer
//
// Every process it starts is stopped, by its own PID, before it exits, and
// the whole run is bounded by -timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command line.
type options struct {
	wrk          string
	oauth2Proxy  string // "" leaves the peer out
	threads      int
	conns        int
	rounds       int
	duration     time.Duration
	latRounds    int
	latLoads     []float64 // fractions of the baseline's throughput
	latDuration  time.Duration
	idle         int
	idleCompare  int
	idleWorkers  bool
	nginxWorkers int
	cpuProfile   string
	out          string
	verbose      bool
	proxyEnv     []string        // extra environment of every oauth-proxy process
	proxyB       string          // a second oauth-proxy binary, measured as the variants named <variant>-b
	only         map[string]bool // variants to run besides the baseline; nil: all
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var timeout time.Duration
	var loads, proxyEnv, only string
	fs.StringVar(&o.wrk, "wrk", "wrk", "the wrk binary (apt-get install -y wrk)")
	fs.StringVar(&o.oauth2Proxy, "oauth2-proxy", "bin/oauth2-proxy", "the oauth2-proxy v7.15.6 binary (make bench-e2e installs it); empty leaves the peer out")
	fs.IntVar(&o.threads, "t", 2, "wrk threads")
	fs.IntVar(&o.conns, "c", 64, "wrk connections")
	fs.IntVar(&o.rounds, "rounds", 5, "throughput rounds; each runs every variant once")
	fs.DurationVar(&o.duration, "duration", 6*time.Second, "wrk run time per variant and round (whole seconds)")
	fs.IntVar(&o.latRounds, "latency-rounds", 5, "latency rounds per rate")
	fs.StringVar(&loads, "latency-load", "0.25", "fixed rates of the latency runs, as fractions of the baseline's median throughput, comma-separated")
	fs.DurationVar(&o.latDuration, "latency-duration", 4*time.Second, "fixed-rate run time per variant and latency round")
	fs.IntVar(&o.idleCompare, "idle-compare", 0, "instead of the table: this many rounds of the idle check with parking on, off with fasthttp's ReduceMemoryUsage, and off (docs/benchmarks.md)")
	fs.IntVar(&o.idle, "idle", 10000, "idle keep-alive connections held open to a fresh oauth-proxy (0: skip)")
	fs.BoolVar(&o.idleWorkers, "idle-workers", true, "run the idle check on a worker set (workers: one per core) too, after the single process, summing the RSS of the supervisor and its workers")
	fs.IntVar(&o.nginxWorkers, "nginx-workers", 0, "NGINX worker processes (0: auto, one per core)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "profile the named variant instead of the table: serve its proxy in this process under wrk load and write a CPU profile to -o (see profile.go)")
	fs.StringVar(&o.out, "o", "", "also write the markdown section (or, with -cpuprofile, the profile) to this file")
	fs.DurationVar(&timeout, "timeout", 20*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.verbose, "v", false, "print the processes' logs at the end")
	fs.StringVar(&proxyEnv, "proxy-env", "", "extra environment of every oauth-proxy process, comma-separated KEY=VALUE (GOMAXPROCS=1, say)")
	fs.StringVar(&o.proxyB, "proxy-b", "", "a second oauth-proxy binary (a build of another commit, say) measured beside this tree's in the same rounds: every oauth-proxy variant again, named <variant>-b (upstream-unix-b, edge-b, ...)")
	fs.StringVar(&only, "variants", "", "comma-separated variants to measure besides the baseline (upstream-tcp, upstream-unix, auth_request-tcp, auth_request-unix, edge, oauth2-proxy; edge-1p: edge mode with GOMAXPROCS=1; the worker sets, workers: one per core, upstream-unix-workers, auth_request-unix-workers, edge-workers; and, only when named, edge-nopark: edge mode with parking off, upstream-tcp-workers and auth_request-tcp-workers; with -proxy-b each oauth-proxy variant again with -b appended); empty: all")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, f := range strings.Split(loads, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > 1 {
			fmt.Fprintf(stderr, "bench: -latency-load %q: want fractions in (0, 1]\n", loads)
			return 2
		}
		o.latLoads = append(o.latLoads, v)
	}
	for _, kv := range strings.Split(proxyEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			fmt.Fprintf(stderr, "bench: -proxy-env %q: want KEY=VALUE[,KEY=VALUE...]\n", proxyEnv)
			return 2
		}
		o.proxyEnv = append(o.proxyEnv, kv)
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, v := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(v)] = true
		}
	}
	if o.proxyB != "" {
		if fi, err := os.Stat(o.proxyB); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			fmt.Fprintf(stderr, "bench: -proxy-b %q: want an oauth-proxy binary\n", o.proxyB)
			return 2
		}
	}
	if o.duration < time.Second || o.rounds < 1 || o.latRounds < 1 || o.threads < 1 || o.conns < o.threads {
		fmt.Fprintln(stderr, "bench: -duration ≥ 1s, -rounds ≥ 1, -latency-rounds ≥ 1, -c ≥ -t ≥ 1")
		return 2
	}
	need := o.idle + 4096
	if o.cpuProfile == "idle" {
		need += o.idle // both ends of each connection are in this process
	}
	if err := raiseNoFile(need); err != nil {
		fmt.Fprintln(stderr, "bench:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var err error
	switch {
	case o.idleCompare > 0:
		err = idleCompare(ctx, o, stdout)
	case o.cpuProfile != "":
		err = profile(ctx, o, stdout)
	default:
		err = bench(ctx, o, args, stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench: FAIL:", err)
		return 1
	}
	return 0
}

// raiseNoFile raises this process's open-file limit to at least n (up to
// the hard limit); the processes it starts inherit it, so that the proxy
// can hold the idle connections.
func raiseNoFile(n int) error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= uint64(n) {
		return nil
	}
	if l.Max < uint64(n) {
		return fmt.Errorf("open-file hard limit %d is below the %d the idle-connection check needs: lower -idle or raise it", l.Max, n)
	}
	l.Cur = uint64(n)
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
}
