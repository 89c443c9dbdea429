package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/harness"
	"github.com/tokenhandler/tokenhandler/internal/metricstest"
)

// soak runs loadtest/soak.js at a fixed arrival rate through NGINX in front
// of two proxies, and meanwhile, on a timeline relative to k6's start:
//
//   - at the end of the warm-up (a tenth of the run, at least 5 s) it reads
//     each proxy's RSS, the start figure;
//   - at 40 % it rotates the keys: each proxy's file gets [new, old] and a
//     SIGHUP. Beforehand a cookie sealed with the new key must be refused
//     (401) by each proxy, afterwards accepted (200), as must old ones.
//     soak.js starts sending new-key cookies 5 s later (ROTATED_START), so
//     that a rotation that did not take fails k6's 0-error threshold too;
//   - at 80 %, once slow POSTs (2 s in the API) are in flight through
//     proxy-a, it takes proxy-a out of NGINX (render without it, graceful
//     reload: the old worker keeps its requests in flight, new workers send
//     everything to proxy-b), then sends proxy-a SIGTERM, which keeps
//     serving for its timeouts.shutdown_delay (3 s) before it drains: the
//     old worker can still write a request on a connection it keeps to
//     proxy-a as the drain closes it (a POST then ends as a 502, seen once in
//     a CI run without the delay). proxy-a must exit
//     0, and the API must have completed at least the slow requests in flight
//     through it at the signal. NGINX never resends a POST, so a slow request
//     the drain dropped reaches k6 as a 502 and fails the 0-error threshold.
//     With -direct-sigterm NGINX is not reloaded: new connections to proxy-a
//     are refused and NGINX moves those requests to proxy-b, but a request
//     NGINX writes on a keep-alive connection that proxy-a is closing at that
//     moment fails, and NGINX resends it only when it is idempotent: a POST
//     then gets a 502 (one POST in one of three 60 s runs, at the signal,
//     without reaching the API);
//   - when k6 ends it reads proxy-b's RSS again, the end figure, which must
//     not exceed the start figure by more than -rss-bound.
func soak(ctx context.Context, st *stack, o options, stdout, stderr io.Writer) error {
	if o.duration == 0 {
		o.duration = 10 * time.Minute
	}
	d := o.duration
	warm := max(5*time.Second, d/10)
	rotateAt := d * 4 / 10
	rotatedStart := rotateAt + 5*time.Second
	termAt := d * 8 / 10
	a, b := st.proxies[0], st.proxies[1]

	cmd := st.k6Cmd(ctx, o, map[string]string{
		"ROTATED_START": strconv.Itoa(int(rotatedStart.Seconds())) + "s",
		"SLOW_PATH":     "/api/slow/echo",
		"SLOW_MS":       strconv.Itoa(int(st.api.slow.Milliseconds())),
	}, stdout, stderr)
	fmt.Fprintf(stdout, "loadtest: k6 run loadtest/soak.js against %s for %s; rotation at %s, SIGTERM to %s at %s\n",
		st.nginxURL, d, rotateAt, a.Name, termAt)
	idle := map[*proxyProc]int64{a: rss(a), b: rss(b)}
	if err := cmd.Start(); err != nil {
		return err
	}
	t0 := time.Now()
	k6Done := make(chan error, 1)
	go func() { k6Done <- cmd.Wait() }()

	var failures []error
	fail := func(format string, args ...any) {
		err := fmt.Errorf(format, args...)
		failures = append(failures, err)
		fmt.Fprintln(stdout, "loadtest: FAIL:", err)
	}
	// until waits for the moment at of the run; false when k6 ended first.
	var k6Err error
	k6Ended := false
	until := func(at time.Duration) bool {
		if k6Ended {
			return false
		}
		select {
		case k6Err = <-k6Done:
			k6Ended = true
			return false
		case <-time.After(time.Until(t0.Add(at))):
			return true
		}
	}

	start := map[*proxyProc]int64{}
	if until(warm) {
		start[a], start[b] = rss(a), rss(b)
		fmt.Fprintf(stdout, "loadtest: RSS after %s warm-up: %s %s (idle before k6: %s), %s %s (idle: %s)\n",
			warm, a.Name, mib(start[a]), mib(idle[a]), b.Name, mib(start[b]), mib(idle[b]))
	}

	if until(rotateAt) {
		if err := st.rotate(ctx); err != nil {
			fail("key rotation: %v", err)
		} else {
			fmt.Fprintf(stdout, "loadtest: t=%s keys rotated to [new, old] with SIGHUP on both proxies; new-key cookies refused before, accepted after\n",
				time.Since(t0).Round(100*time.Millisecond))
		}
	}

	var endA, peakA int64
	if until(termAt) {
		endA, peakA = rss(a), memory(a, "process_resident_memory_peak_bytes")
		inFlight, err := st.drain(ctx, a, st.api.counts[0], o.direct, stdout, t0)
		if err != nil {
			fail("SIGTERM drain: %v", err)
		} else if inFlight == 0 {
			fail("SIGTERM drain: no slow request was in flight through %s", a.Name)
		}
	}

	if !k6Ended {
		select {
		case k6Err = <-k6Done:
		case <-ctx.Done():
			k6Err = <-k6Done
		}
	}
	endB, peakB := rss(b), memory(b, "process_resident_memory_peak_bytes")

	fmt.Fprintf(stdout, "loadtest: RSS %s: start %s, end %s (%+.1f MiB), peak %s\n",
		b.Name, mib(start[b]), mib(endB), float64(endB-start[b])/(1<<20), mib(peakB))
	fmt.Fprintf(stdout, "loadtest: RSS %s: start %s, before SIGTERM %s, peak before SIGTERM %s\n",
		a.Name, mib(start[a]), mib(endA), mib(peakA))
	if start[b] == 0 || endB == 0 {
		fail("RSS of %s not read (start %d, end %d)", b.Name, start[b], endB)
	} else if endB > start[b]+o.rssBound {
		fail("RSS of %s grew from %s to %s, more than %s", b.Name, mib(start[b]), mib(endB), mib(o.rssBound))
	}
	if k6Err != nil {
		failures = append(failures, fmt.Errorf("k6 soak: %w (exit 99 means a threshold failed)", k6Err))
	}
	return errors.Join(failures...)
}

// rotate puts [new, old] into every proxy's configuration and sends it
// SIGHUP, checking that a cookie sealed with the new key is refused before
// and accepted after, and that the old keys' cookies still open.
func (s *stack) rotate(ctx context.Context) error {
	oldSess, newSess := s.minted.Sessions[0], s.minted.Rotated[0]
	for _, p := range s.proxies {
		if code, err := probe(ctx, p.addr, newSess); err != nil || code != http.StatusUnauthorized {
			return fmt.Errorf("%s: before the rotation a new-key cookie got %d (%v), want 401", p.Name, code, err)
		}
		before, err := reloads(p.metrics)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p.conf, proxyConfig(p.addr, p.metrics, p.api, s.newKey, s.oldKey), 0o600); err != nil {
			return err
		}
		if err := p.Signal(syscall.SIGHUP); err != nil {
			return err
		}
		var readErr error
		if err := harness.Wait(ctx, 5*time.Second, 20*time.Millisecond, "no successful reload after SIGHUP", func() bool {
			n, err := reloads(p.metrics)
			readErr = err
			return err != nil || n > before
		}); err != nil {
			return fmt.Errorf("%s: %w: %s", p.Name, err, p.Log())
		}
		if readErr != nil {
			return readErr
		}
		for _, ss := range []session{newSess, oldSess} {
			if code, err := probe(ctx, p.addr, ss); err != nil || code != http.StatusOK {
				return fmt.Errorf("%s: after the rotation a cookie got %d (%v), want 200", p.Name, code, err)
			}
		}
	}
	return nil
}

// drain sends p SIGTERM once slow requests are in flight through it, waits
// for it to exit and checks that it exited 0 and that the API completed
// every slow request that was in flight at the signal. It returns how many
// were.
func (s *stack) drain(ctx context.Context, p *proxyProc, c *apiCounts, direct bool, w io.Writer, t0 time.Time) (int, error) {
	var inFlight, completed int
	harness.Wait(ctx, 10*time.Second, 5*time.Millisecond, "", func() bool {
		inFlight, completed = c.snapshot()
		return inFlight >= 2
	})
	if inFlight == 0 {
		return 0, nil
	}
	if !direct {
		// As an operator would: take the proxy out of NGINX first (graceful
		// reload), so that no new request, and above all no POST, is sent
		// to it on a keep-alive connection it is about to close. The old
		// NGINX worker still waits for the requests in flight through it.
		var rest []string
		for _, q := range s.proxies {
			if q != p {
				rest = append(rest, q.addr)
			}
		}
		if err := s.nginx.reload(rest); err != nil {
			return inFlight, err
		}
		if inFlight, completed = c.snapshot(); inFlight == 0 {
			return 0, nil
		}
		fmt.Fprintf(w, "loadtest: t=%s NGINX reloaded without %s\n", time.Since(t0).Round(100*time.Millisecond), p.Name)
	}
	sent := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return inFlight, err
	}
	select {
	case <-p.Exited():
	case <-time.After(30 * time.Second):
		return inFlight, fmt.Errorf("%s did not exit within 30 s of SIGTERM", p.Name)
	case <-ctx.Done():
		return inFlight, ctx.Err()
	}
	took := time.Since(sent)
	_, done := c.snapshot()
	fmt.Fprintf(w, "loadtest: t=%s SIGTERM to %s with %d slow requests in flight through it: exited (%v) after %s, %d slow requests completed meanwhile\n",
		sent.Sub(t0).Round(100*time.Millisecond), p.Name, inFlight, exitStatus(p.ExitErr()), took.Round(10*time.Millisecond), done-completed)
	if err := p.ExitErr(); err != nil {
		return inFlight, fmt.Errorf("%s exited with %v after SIGTERM, want 0: %s", p.Name, err, p.Log())
	}
	if done-completed < inFlight {
		return inFlight, fmt.Errorf("%s: %d slow requests in flight at SIGTERM, only %d completed", p.Name, inFlight, done-completed)
	}
	return inFlight, nil
}

func exitStatus(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// probe sends GET /api/probe straight to a proxy with ss's cookies and
// returns the status.
func probe(ctx context.Context, addr string, ss session) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/probe", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Cookie", cookiePrefix+"-at="+ss.At)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// reloads reads oauth_proxy_config_reloads_total{result="ok"} from a
// proxy's metrics listener.
func reloads(addr string) (int, error) {
	page, err := metricstest.Scrape(addr)
	if err != nil {
		return 0, err
	}
	if v, ok := metricstest.Sample(page, `oauth_proxy_config_reloads_total{result="ok"}`); ok {
		return strconv.Atoi(v)
	}
	return 0, errors.New("oauth_proxy_config_reloads_total{result=\"ok\"} not in /metrics")
}

// rss is p's resident set size in bytes, 0 when it cannot be read.
func rss(p *proxyProc) int64 { return memory(p, "process_resident_memory_bytes") }

// memory reads a figure in bytes of p's process, as process_resident_memory_bytes or
// process_resident_memory_peak_bytes (the kernel's high-water mark, VmHWM), from p's own
// metrics page; 0 when it cannot be read.
func memory(p *proxyProc, series string) int64 {
	page, _ := metricstest.Scrape(p.metrics)
	v, _ := metricstest.Value(page, series)
	return int64(v)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
