package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
	"github.com/tokenhandler/tokenhandler/nginx"
	"github.com/tokenhandler/tokenhandler/nginx/nginxtest"
)

// variant is one way of serving the API that the benchmark measures.
type variant struct {
	name    string
	what    string
	addr    string             // where the load goes (host:port)
	headers [][2]string        // of every request
	th      *process           // the token-handler process; nil for the baseline
	nginx   *nginxtest.Process // nil without NGINX

	rps       []float64
	requests  int64
	thTicks   int64 // CPU of th during the wrk rounds
	ngxTicks  int64 // CPU of NGINX's master and workers during the wrk rounds
	ctxt      int64 // context switches of the whole machine during the wrk rounds
	bad       int64
	latQ      [][][3]time.Duration // per fraction of -latency-load, per round: p50, p99, p99.9
	latFailed []int64
	latSkip   []string // why no latency was measured, or ""
	peakRSS   int64
}

func (v *variant) median() float64 { return median(v.rps) }

// ticks is the CPU clock ticks so far of the token-handler process (a
// worker set's summed) and of NGINX's master and workers; 0 for what the
// variant has not.
func (v *variant) ticks() (th, ngx int64) {
	if v.th != nil {
		th = cpuTicks(v.th.Pid(), v.th.set)
	}
	if v.nginx != nil {
		ngx = cpuTicks(v.nginx.Pid(), true)
	}
	return th, ngx
}

// pct is the median over the latency rounds at rate i of quantile k (0:
// p50, 1: p99, 2: p99.9).
func (v *variant) pct(i, k int) time.Duration {
	var xs []float64
	for _, r := range v.latQ[i] {
		xs = append(xs, float64(r[k]))
	}
	return time.Duration(median(xs))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// startVariants starts every variant's processes: the oauth-proxy
// variants named with suffix (with s.proxy), and, when suffix is "", the
// baseline and the peer.
func startVariants(ctx context.Context, s *stack, o options, suffix string) ([]*variant, error) {
	th := [][2]string{{"Host", apiHost}, {"Origin", origin}, {"Cookie", cookiePrefix + "-at=" + s.at}}
	var vs []*variant
	want := func(name string) bool { return o.only == nil || o.only[name] }
	add := func(v *variant) error {
		if v.headers == nil {
			v.headers = th
		}
		code, err := probe(v.addr, v.headers)
		if err != nil || code != 200 {
			return fmt.Errorf("%s: a GET of %s got %d (%v), want 200", v.name, apiPath, code, err)
		}
		vs = append(vs, v)
		return nil
	}

	// The baseline: NGINX's upstream-mode configuration with the API where
	// the proxy would be: the same directives, keep-alive pool and headers,
	// one hop fewer.
	if suffix == "" {
		ngx, err := s.startNGINX(ctx, "nginx-baseline", nginx.ModeUpstream, o.nginxWorkers, 1, []string{s.api}, nil)
		if err != nil {
			return nil, err
		}
		if err := add(&variant{name: "baseline", what: "NGINX → API", addr: ngx.Addr(), nginx: ngx}); err != nil {
			return nil, err
		}
	}
	var err error
	whatB := func(w string) string {
		if suffix != "" {
			w += " (-proxy-b)"
		}
		return w
	}

	for _, m := range []struct{ name, mode, what string }{
		{"upstream", nginx.ModeUpstream, "NGINX → oauth-proxy → API"},
		{"auth_request", nginx.ModeAuthRequest, "NGINX (auth_request → oauth-proxy) → API"},
	} {
		// The worker sets (workers: one per core) over a Unix socket by
		// default, over TCP only when named.
		for _, c := range []struct {
			unix bool
			set  string // "" or workerSet
		}{{false, ""}, {true, ""}, {false, workerSet}, {true, workerSet}} {
			name := m.name + map[bool]string{false: "-tcp", true: "-unix"}[c.unix]
			if c.set != "" {
				name += "-workers"
			}
			if name += suffix; !want(name) || c.set != "" && !c.unix && !o.only[name] {
				continue
			}
			listen := "unix:" + filepath.Join(s.Dir, name+".sock")
			if !c.unix {
				if listen, err = harness.FreeAddr(); err != nil {
					return nil, err
				}
			}
			p, err := s.startProxy(ctx, "oauth-proxy-"+name, listen, c.set)
			if err != nil {
				return nil, err
			}
			what, proxyWorkers := m.what+map[bool]string{false: ", proxy on TCP", true: ", proxy on a Unix socket"}[c.unix], 1
			if p.set {
				what, proxyWorkers = what+fmt.Sprintf(", %d proxy workers", runtime.NumCPU()), runtime.NumCPU()
			}
			ngx, err := s.startNGINX(ctx, "nginx-"+name, m.mode, o.nginxWorkers, proxyWorkers, []string{listen}, []string{s.api})
			if err != nil {
				return nil, err
			}
			what = whatB(what)
			if err := add(&variant{name: name, what: what, addr: ngx.Addr(), th: p, nginx: ngx}); err != nil {
				return nil, err
			}
		}
	}

	// Edge mode; edge-nopark, with parking off to show what parking costs
	// under load, only when asked for.
	for _, e := range []struct {
		name, what, extra, set string
		on                     bool
	}{
		// Edge mode faces browsers; on the harness's loopback address
		// parking would be off by default (timeouts.park's default, proxy/config.go).
		{"edge" + suffix, whatB("oauth-proxy → API"), parkOn, "", want("edge" + suffix)},
		{"edge-nopark" + suffix, whatB("oauth-proxy → API, timeouts.park 0s"), "timeouts: {park: 0s}\n", "", o.only["edge-nopark"+suffix]},
		{"edge-1p" + suffix, whatB("oauth-proxy → API, one process with GOMAXPROCS=1"), parkOn, oneProcessor, want("edge-1p" + suffix)},
		{"edge-workers" + suffix, whatB(fmt.Sprintf("oauth-proxy → API, %d proxy workers", runtime.NumCPU())), parkOn, workerSet, want("edge-workers" + suffix)},
	} {
		if !e.on {
			continue
		}
		edge, err := harness.FreeAddr()
		if err != nil {
			return nil, err
		}
		p, err := s.startProxy(ctx, "oauth-proxy-"+e.name, edge, e.extra, e.set)
		if err != nil {
			return nil, err
		}
		if err := add(&variant{name: e.name, what: e.what, addr: edge, th: p}); err != nil {
			return nil, err
		}
	}

	if o.oauth2Proxy != "" && want("oauth2-proxy") && suffix == "" {
		p, addr, cookie, err := s.startOAuth2Proxy(ctx, o.oauth2Proxy)
		if err != nil {
			return nil, err
		}
		h := [][2]string{{"Host", apiHost}, {"Origin", origin}, {"Cookie", cookie}}
		if err := add(&variant{name: "oauth2-proxy", what: "oauth2-proxy v7.15.6 → API, cookie session", addr: addr, headers: h, th: p}); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// bench measures every variant and prints the markdown section.
func bench(ctx context.Context, o options, args []string, w io.Writer) (err error) {
	if _, err := exec.LookPath(o.wrk); err != nil {
		return fmt.Errorf("wrk not found (apt-get install -y wrk, or pass -wrk): %w", err)
	}
	start := time.Now()
	s, err := startStack(ctx, w, o.proxyEnv)
	defer s.stop(w, o.verbose, &err)
	if err != nil {
		return err
	}
	vs, err := startVariants(ctx, s, o, "")
	if err != nil {
		return err
	}
	if o.proxyB != "" {
		s.proxy = o.proxyB
		vb, err := startVariants(ctx, s, o, "-b")
		if err != nil {
			return err
		}
		vs = append(vs, vb...)
	}
	fmt.Fprintf(w, "bench: %d variants up in %s\n", len(vs), time.Since(start).Round(100*time.Millisecond))

	// Warm-up: every variant fills its keep-alive pools and grows its heap
	// before anything counts.
	for _, v := range vs {
		if _, err := runWrk(ctx, o.wrk, o.threads, o.conns, 2*time.Second, v.addr, v.headers); err != nil {
			return fmt.Errorf("%s: %w", v.name, err)
		}
	}

	// Throughput: in each round every variant once, the order rotated
	// from round to round, so that a noisy neighbour's burst spreads over
	// the variants instead of landing on one.
	for r := range o.rounds {
		for i := range vs {
			v := vs[(i+r)%len(vs)]
			cs0, err := ctxtSwitches()
			if err != nil {
				return err
			}
			th0, ng0 := v.ticks()
			res, err := runWrk(ctx, o.wrk, o.threads, o.conns, o.duration, v.addr, v.headers)
			if err != nil {
				return fmt.Errorf("%s: %w", v.name, err)
			}
			cs1, err := ctxtSwitches()
			if err != nil {
				return err
			}
			th1, ng1 := v.ticks()
			v.ctxt, v.thTicks, v.ngxTicks = v.ctxt+cs1-cs0, v.thTicks+th1-th0, v.ngxTicks+ng1-ng0
			v.rps = append(v.rps, res.rps)
			v.requests += res.requests
			v.bad += res.bad
			fmt.Fprintf(w, "bench: round %d/%d %-18s %9.0f req/s\n", r+1, o.rounds, v.name, res.rps)
		}
	}
	base := vs[0].median()
	rates := make([]int, len(o.latLoads))
	for i, f := range o.latLoads {
		rates[i] = int(base * f)
	}

	// Latency at fixed fractions of the baseline's capacity, interleaved
	// the same way. A variant whose capacity is too close to the rate
	// would only measure its queue.
	for _, v := range vs {
		v.latQ = make([][][3]time.Duration, len(rates))
		v.latFailed = make([]int64, len(rates))
		v.latSkip = make([]string, len(rates))
		for i, rate := range rates {
			if v.median() < float64(rate)*1.1 {
				v.latSkip[i] = fmt.Sprintf("its capacity (%.0f req/s) is within 10 %% of %d req/s", v.median(), rate)
			}
		}
	}
	for i, rate := range rates {
		for r := range o.latRounds {
			for j := range vs {
				v := vs[(j+r)%len(vs)]
				if v.latSkip[i] != "" {
					continue
				}
				lat, failed, err := latencies(ctx, v.addr, v.headers, rate, o.latDuration)
				if err != nil {
					return fmt.Errorf("%s: %w", v.name, err)
				}
				v.latQ[i] = append(v.latQ[i], [3]time.Duration{quantile(lat, 0.5), quantile(lat, 0.99), quantile(lat, 0.999)})
				v.latFailed[i] += failed
				fmt.Fprintf(w, "bench: latency at %d req/s, round %d/%d %-18s p50 %s p99 %s\n", rate, r+1, o.latRounds, v.name, quantile(lat, 0.5), quantile(lat, 0.99))
			}
		}
	}
	for _, v := range vs {
		if v.th != nil {
			if v.peakRSS, err = v.th.memory("VmHWM"); err != nil {
				return err
			}
		}
	}

	var idle []*idleResult // the single process, then the worker set
	for _, set := range []bool{false, true} {
		if o.idle == 0 || set && !o.idleWorkers {
			break
		}
		res, err := idleCheck(ctx, s, o.idle, vs[0].headers, parkOn, map[bool]string{true: workerSet}[set])
		if err != nil {
			return err
		}
		idle = append(idle, res)
	}

	var md strings.Builder
	report(&md, o, args, vs, rates, idle, time.Since(start))
	fmt.Fprint(w, "\n"+md.String())
	if o.out != "" {
		return os.WriteFile(o.out, []byte(md.String()), 0o644)
	}
	return nil
}

// idleResult is the idle-connection check.
type idleResult struct {
	conns          int
	set            bool  // of a worker set: the sums over the supervisor and its workers
	before, during int64 // VmRSS, bytes
	peak           int64 // VmHWM
	parked         string
}

// metricValue returns the value of the series name on the metrics
// listener at addr, summed over its labels (a worker set's workers), or
// "?".
func metricValue(addr, name string) string {
	page, _ := metricstest.Scrape(addr)
	sum, found := 0.0, false
	for line := range strings.Lines(page) {
		if f := strings.Fields(line); len(f) == 2 && (f[0] == name || strings.HasPrefix(f[0], name+"{")) {
			v, err := strconv.ParseFloat(f[1], 64)
			sum, found = sum+v, found || err == nil
		}
	}
	if !found {
		return "?"
	}
	return strconv.FormatFloat(sum, 'f', -1, 64)
}

// parkOn is the idle check's proxy setting: parking after 1 s, as a proxy
// that browsers reach directly (edge mode) parks by default.
const parkOn = "timeouts: {park: 1s}\n"

// idleCheck starts a fresh oauth-proxy with the extra settings extra,
// opens n keep-alive connections to it, each served one GET, and reads its
// RSS (a worker set's: the sum over its processes) while they sit idle.
func idleCheck(ctx context.Context, s *stack, n int, headers [][2]string, extra ...string) (*idleResult, error) {
	addr, err := harness.FreeAddr()
	if err != nil {
		return nil, err
	}
	p, err := s.startProxy(ctx, "oauth-proxy-idle", addr, extra...)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	if code, err := probe(addr, headers); err != nil || code != 200 {
		return nil, fmt.Errorf("idle check: a GET got %d (%v)", code, err)
	}
	res := &idleResult{conns: n, set: p.set}
	if res.before, err = p.memory("VmRSS"); err != nil {
		return nil, err
	}
	err = holdIdle(ctx, addr, headers, n, func() (err error) {
		res.parked = metricValue(p.metrics, "oauth_proxy_parked_connections")
		if res.during, err = p.memory("VmRSS"); err == nil {
			res.peak, err = p.memory("VmHWM")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("idle check: %w", err)
	}
	return res, nil
}

// idleCompare is -idle-compare (issue #17): the idle check for three
// proxies side by side, rounds times, the order rotated from round to
// round: (a) parking, (b) no parking, with fasthttp's ReduceMemoryUsage
// and a 4 KiB write buffer (an oauth-proxy built with -tags idlecompare:
// internal/daemon/idlecompare.go), (c) no parking, the release build.
// It prints each round and a markdown table of the medians.
func idleCompare(ctx context.Context, o options, w io.Writer) (err error) {
	s, err := startStack(ctx, w, o.proxyEnv)
	defer s.stop(w, o.verbose, &err)
	if err != nil {
		return err
	}
	reduced, err := s.Build(ctx, "idlecompare", "./cmd/oauth-proxy")
	if err != nil {
		return err
	}
	headers := [][2]string{{"Host", apiHost}, {"Origin", origin}, {"Cookie", cookiePrefix + "-at=" + s.at}}
	parkOff := "timeouts: {park: 0s}\n"
	variants := []struct{ name, bin, extra string }{
		{"(a) parking on (`timeouts.park: 1s`)", s.proxy, parkOn},
		{"(b) parking off, `ReduceMemoryUsage: true`, 4 KiB write buffer", filepath.Join(reduced, "oauth-proxy"), parkOff},
		{"(c) parking off, fasthttp's defaults (as the proxy sets them)", s.proxy, parkOff},
	}
	release := s.proxy
	defer func() { s.proxy = release }()
	results := make([][]*idleResult, len(variants))
	for r := range o.idleCompare {
		for i := range variants {
			j := (i + r) % len(variants)
			v := variants[j]
			s.proxy = v.bin
			res, rerr := idleCheck(ctx, s, o.idle, headers, v.extra)
			if rerr != nil {
				return fmt.Errorf("%s: %w", v.name, rerr)
			}
			results[j] = append(results[j], res)
			fmt.Fprintf(w, "bench: idle round %d/%d %s: RSS %.1f MiB (%.1f before), peak %.1f, parked %s\n", r+1, o.idleCompare,
				v.name, mib(res.during), mib(res.before), mib(res.peak), res.parked)
		}
	}
	fmt.Fprintf(w, "\n| %d idle keep-alive connections | RSS MiB, median of %d | the rounds | RSS before them | peak RSS while served |\n|---|---:|---|---:|---:|\n",
		o.idle, o.idleCompare)
	for i, v := range variants {
		var during, before, peak []float64
		var rounds []string
		for _, res := range results[i] {
			during, before, peak = append(during, mib(res.during)), append(before, mib(res.before)), append(peak, mib(res.peak))
			rounds = append(rounds, fmt.Sprintf("%.1f", mib(res.during)))
		}
		fmt.Fprintf(w, "| %s | %.1f | %s | %.1f | %.1f |\n", v.name, median(during), strings.Join(rounds, ", "), median(before), median(peak))
	}
	return nil
}

// mib is a byte count in MiB.
func mib(n int64) float64 { return float64(n) / (1 << 20) }

// machine describes where the run happened.
func machine(o options) []string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	version := func(name string, args ...string) string {
		out, _ := exec.Command(name, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	ngx, _ := nginxtest.Find()
	kernel := version("uname", "-r")
	lines := []string{
		fmt.Sprintf("%d cores (`nproc`), %s, Linux %s", runtime.NumCPU(), cpu, kernel),
		"Go " + strings.TrimPrefix(runtime.Version(), "go") + ", " + version(ngx, "-v"),
		version(o.wrk, "-v"),
	}
	if o.oauth2Proxy != "" {
		// A go-installed oauth2-proxy prints "undefined" as its version;
		// the module version is in the build information.
		peer := "oauth2-proxy (version unknown)"
		out, _ := exec.Command("go", "version", "-m", o.oauth2Proxy).Output()
		for line := range strings.Lines(string(out)) {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "mod" && f[1] == "github.com/oauth2-proxy/oauth2-proxy/v7" {
				peer = "oauth2-proxy " + f[2] + " (`go install`)"
			}
		}
		lines = append(lines, peer)
	}
	return lines
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// report writes the markdown section.
func report(w io.Writer, o options, args []string, vs []*variant, rates []int, idle []*idleResult, took time.Duration) {
	base := vs[0]
	var peer *variant
	for _, v := range vs {
		if v.name == "oauth2-proxy" {
			peer = v
		}
	}
	fmt.Fprintf(w, "## End to end (`make bench-e2e`), %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	for _, l := range machine(o) {
		fmt.Fprintf(w, "* %s\n", l)
	}
	cmd := "go run ./bench/run"
	if len(args) > 0 {
		cmd += " " + strings.Join(args, " ")
	}
	fmt.Fprintf(w, "\n```sh\n%s\n```\n\n", cmd)
	fmt.Fprintf(w, "Throughput: `wrk -t%d -c%d -d%s`, %d rounds, median; every round runs each variant once, in rotated order. "+
		"CPU: utime+stime of the token-handler process (NGINX: master and workers) over all wrk rounds, in µs per request. "+
		"Context switches: the whole machine's (/proc/stat `ctxt`, wrk and the API included) over all wrk rounds, per request. "+
		"Peak RSS: VmHWM at the end of the run. NGINX: %s worker processes, configured by nginx.Render as deployed (access log included). The run took %s.\n\n",
		o.threads, o.conns, o.duration, o.rounds, workers(o.nginxWorkers), took.Round(time.Second))

	fmt.Fprintln(w, "| variant | path | req/s (median) | × baseline | × oauth2-proxy | token handler CPU µs/req | NGINX CPU µs/req | context switches / req | token handler peak RSS MiB |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, v := range vs {
		ratioPeer := "—"
		if peer != nil && v != peer {
			ratioPeer = fmt.Sprintf("%.1f×", v.median()/peer.median())
		}
		thCPU, ngxCPU, rss := "—", "—", "—"
		if v.th != nil {
			thCPU, rss = fmt.Sprintf("%.1f", usPerRequest(v.thTicks, v.requests)), fmt.Sprintf("%.1f", mib(v.peakRSS))
		}
		if v.nginx != nil {
			ngxCPU = fmt.Sprintf("%.1f", usPerRequest(v.ngxTicks, v.requests))
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.2f× | %s | %s | %s | %.2f | %s |\n",
			v.name, v.what, v.median(), v.median()/base.median(), ratioPeer, thCPU, ngxCPU, perRequest(v.ctxt, v.requests), rss)
	}

	fmt.Fprintf(w, "\nLatency: open loop from this process (fasthttp client, up to 512 connections) at fixed fractions of the baseline's "+
		"median throughput, %d × %s per variant and rate, interleaved; each figure is the median over the rounds of that round's quantile. Each request counts from its scheduled start, "+
		"so a stall delays those behind it instead of hiding them.\n\n", o.latRounds, o.latDuration)
	fmt.Fprintln(w, "| variant | rate | p50 ms | p99 ms | p99.9 ms | p99 added over the baseline ms |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for i, rate := range rates {
		for _, v := range vs {
			if v.latSkip[i] != "" {
				fmt.Fprintf(w, "| %s | %d (%.0f %%) | — | — | — | — (%s) |\n", v.name, rate, o.latLoads[i]*100, v.latSkip[i])
				continue
			}
			added := "—"
			if v != base && len(base.latQ[i]) > 0 {
				added = fmt.Sprintf("%+.2f", float64(v.pct(i, 1)-base.pct(i, 1))/float64(time.Millisecond))
			}
			fmt.Fprintf(w, "| %s | %d (%.0f %%) | %s | %s | %s | %s |\n", v.name, rate, o.latLoads[i]*100,
				ms(v.pct(i, 0)), ms(v.pct(i, 1)), ms(v.pct(i, 2)), added)
		}
	}
	fmt.Fprintln(w)
	for _, v := range vs {
		var failed int64
		for _, f := range v.latFailed {
			failed += f
		}
		if v.bad > 0 || failed > 0 {
			fmt.Fprintf(w, "* **%s: %d failed requests under wrk, %d at the fixed rates.**\n", v.name, v.bad, failed)
		}
	}
	for _, idle := range idle {
		fmt.Fprintf(w, "* Idle connections: a fresh oauth-proxy%s holding %d keep-alive connections (each served one GET), idle for 10 s: "+
			"RSS %.1f MiB (%.1f MiB before them), peak %.1f MiB while they were served; %s of them parked.\n",
			map[bool]string{true: fmt.Sprintf(" worker set (%d workers and the supervisor, RSS summed)", runtime.NumCPU())}[idle.set], idle.conns, float64(idle.during)/(1<<20), float64(idle.before)/(1<<20), float64(idle.peak)/(1<<20), idle.parked)
	}

	fmt.Fprintf(w, "\nTargets (issue 14), from this run:\n\n")
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	for _, v := range vs[1:] {
		if v == peer {
			continue
		}
		mode, _, _ := strings.Cut(v.name, "-")
		want := map[string]float64{"upstream": 0.65, "auth_request": 0.60, "edge": 0.95}[mode]
		r := v.median() / base.median()
		fmt.Fprintf(w, "* %s: throughput %.2f× the baseline (≥ %.2f×): %s", v.name, r, want, met(r >= want))
		if mode == "upstream" {
			us := usPerRequest(v.thTicks, v.requests)
			fmt.Fprintf(w, "; token handler CPU %.1f µs/req (≤ 20): %s", us, met(us <= 20))
		}
		for i, f := range o.latLoads {
			switch {
			case mode == "auth_request" || f != 0.25:
			case len(v.latQ[i]) > 0 && len(base.latQ[i]) > 0:
				added := v.pct(i, 1) - base.pct(i, 1)
				fmt.Fprintf(w, "; p99 added at 25 %% %.2f ms (≤ 0.5 ms): %s", float64(added)/float64(time.Millisecond), met(added <= 500*time.Microsecond))
			default:
				fmt.Fprintf(w, "; p99 at 25 %%: not measured (%s)", v.latSkip[i])
			}
		}
		fmt.Fprintln(w)
	}
	for _, idle := range idle {
		fmt.Fprintf(w, "* RSS with %d idle connections%s %.1f MiB (≤ 64 MiB): %s\n", idle.conns, map[bool]string{true: " (worker set)"}[idle.set], float64(idle.during)/(1<<20), met(idle.during <= 64<<20))
	}
}

func workers(n int) string {
	if n == 0 {
		return fmt.Sprintf("auto (%d)", runtime.NumCPU())
	}
	return fmt.Sprint(n)
}
