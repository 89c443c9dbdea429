package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tokenhandler/tokenhandler/internal/harness"
)

// wrkResult is one wrk run.
type wrkResult struct {
	rps      float64
	requests int64
	bad      int64 // non-2xx/3xx answers plus socket errors
}

var (
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkRequests = regexp.MustCompile(`(?m)^\s*([0-9]+) requests in `)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: ([0-9]+)`)
	wrkSocket   = regexp.MustCompile(`(?m)^\s*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)`)
)

// parseWrk reads wrk's report.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := wrkRPS.FindStringSubmatch(out)
	n := wrkRequests.FindStringSubmatch(out)
	if m == nil || n == nil {
		return r, fmt.Errorf("wrk: no Requests/sec in its report:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	r.requests, _ = strconv.ParseInt(n[1], 10, 64)
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		r.bad += v
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			v, _ := strconv.ParseInt(s, 10, 64)
			r.bad += v
		}
	}
	return r, nil
}

// runWrk runs wrk against addr with headers for d.
func runWrk(ctx context.Context, wrk string, threads, conns int, d time.Duration, addr string, headers [][2]string) (wrkResult, error) {
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s"}
	for _, h := range headers {
		args = append(args, "-H", h[0]+": "+h[1]) // a Host header replaces the URL's
	}
	args = append(args, "http://"+addr+apiPath)
	c, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(c, wrk, args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	return parseWrk(string(out))
}

// latencies sends GETs to addr at a fixed rate for d, open loop: each
// request has its scheduled start, and its latency counts from then, so a
// stall delays the requests behind it instead of hiding them (no
// coordinated omission). It returns the latencies, sorted, and the number
// of failed requests.
func latencies(ctx context.Context, addr string, headers [][2]string, rate int, d time.Duration) ([]time.Duration, int64, error) {
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: 512, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdleConnDuration: time.Minute, NoDefaultUserAgentHeader: true}
	defer hc.CloseIdleConnections()
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	out := make([]time.Duration, n)
	var failed atomic.Int64
	start := time.Now().Add(50 * time.Millisecond)
	next := make(chan int, 4096)
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + addr + apiPath)
			for _, h := range headers {
				if h[0] == "Host" {
					req.Header.SetHost(h[1])
				} else {
					req.Header.Set(h[0], h[1])
				}
			}
			for i := range next {
				at := start.Add(time.Duration(i) * interval)
				if w := time.Until(at); w > 0 {
					time.Sleep(w)
				}
				err := hc.Do(req, resp)
				out[i] = time.Since(at)
				if err != nil || resp.StatusCode() != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	// The scheduler hands out, every millisecond, the requests due within
	// the next 20 ms, so that an idle worker is waiting for each when it is
	// due; per-request timers would cost more than the requests at these
	// rates.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; {
		horizon := time.Since(start) + 20*time.Millisecond
		for ; i < n && time.Duration(i)*interval <= horizon; i++ {
			select {
			case next <- i:
			case <-ctx.Done():
				close(next)
				wg.Wait()
				return nil, 0, ctx.Err()
			}
		}
		<-tick.C
	}
	close(next)
	wg.Wait()
	slices.Sort(out)
	return out, failed.Load(), nil
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// cpuTicks returns the user plus system CPU time of pid and, with
// children, of its direct children too (NGINX's workers), in clock ticks
// (1/100 s on Linux).
func cpuTicks(pid int, children bool) int64 {
	var sum int64
	for _, p := range withChildren(pid, children) {
		f := harness.Stat(p)
		if len(f) < 13 {
			continue
		}
		// After "pid (comm)": state is field 0, utime 11, stime 12 (proc(5)).
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		sum += u + s
	}
	return sum
}

// withChildren is pid and, when children is true, the processes whose
// parent it is (NGINX's workers, a proxy worker set's).
func withChildren(pid int, children bool) []int {
	if !children {
		return []int{pid}
	}
	return append([]int{pid}, harness.Children(pid)...)
}

const clockTicks = 100 // USER_HZ, 100 on every Linux architecture Go supports

// usPerRequest is CPU clock ticks spent on n requests, in µs per request.
func usPerRequest(ticks, n int64) float64 { return perRequest(ticks*(1e6/clockTicks), n) }

// perRequest is x per request of n (0 when nothing was counted).
func perRequest(x, n int64) float64 { return float64(x) / float64(max(n, 1)) }

// ctxtSwitches returns the context switches of the whole machine since it
// booted (/proc/stat's ctxt).
func ctxtSwitches() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseCtxt(b)
}

func parseCtxt(stat []byte) (int64, error) {
	for line := range strings.Lines(string(stat)) {
		if v, ok := strings.CutPrefix(line, "ctxt "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no ctxt line in /proc/stat")
}

// procStatus returns a field of /proc/pid/status in bytes ("VmHWM",
// "VmRSS").
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// holdIdle opens n keep-alive connections to addr, sends one GET of the
// benchmark on each and reads its answer, so that every connection has
// been served, and calls idle once they have sat idle for 10 s; it closes
// them after.
func holdIdle(ctx context.Context, addr string, headers [][2]string, n int, idle func() error) error {
	req := request(headers)
	conns := make([]net.Conn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  atomic.Int64
	)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				c, code, _, err := exchange(addr, req)
				if err == nil && code != http.StatusOK {
					c.Close()
					err = fmt.Errorf("%d %s", code, http.StatusText(code))
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					return
				}
				c.SetDeadline(time.Time{})
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	if first != nil {
		return first
	}
	// Let the server settle, as a server does between a browser's calls:
	// the connections' waits go idle, oauth-proxy parks them after
	// timeouts.park (1 s) and returns the memory that served them.
	time.Sleep(10 * time.Second)
	return idle()
}
