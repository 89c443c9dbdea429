package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name     string
		out      string
		rps      float64
		requests int64
		bad      int64
		err      bool
	}{
		{name: "clean", out: `Running 6s test @ http://127.0.0.1:4000/api/data
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms    1.01ms  21.12ms   90.11%
    Req/Sec    21.10k     1.20k   24.02k    70.00%
  251923 requests in 6.00s, 60.31MB read
Requests/sec:  41983.52
Transfer/sec:     10.05MB
`, rps: 41983.52, requests: 251923},
		{name: "errors", out: `  1000 requests in 6.00s, 60.31MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 10
Requests/sec:    166.66
`, rps: 166.66, requests: 1000, bad: 20},
		{name: "no report", out: "unable to connect to 127.0.0.1:1 Connection refused\n", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseWrk(tc.out)
			if tc.err {
				if err == nil {
					t.Fatalf("parseWrk = %+v, want an error", r)
				}
				return
			}
			if err != nil || r.rps != tc.rps || r.requests != tc.requests || r.bad != tc.bad {
				t.Fatalf("parseWrk = %+v, %v; want rps %v, requests %d, bad %d", r, err, tc.rps, tc.requests, tc.bad)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i))
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500}, {0.99, 990}, {0.999, 999}, {1, 1000}, {0, 1}} {
		if got := quantile(s, tc.q); got != tc.want {
			t.Errorf("quantile(1..1000, %v) = %d, want %d", tc.q, got, tc.want)
		}
	}
	if got := quantile(nil, 0.99); got != 0 {
		t.Errorf("quantile(nil) = %d", got)
	}
}

func TestMedian(t *testing.T) {
	if got := median([]float64{5, 1, 3}); got != 3 {
		t.Errorf("median odd = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %v", got)
	}
}

func TestJWTShaped(t *testing.T) {
	for _, n := range []int{800, 1024, 2048} {
		tok := jwtShaped(n)
		parts := strings.Split(tok, ".")
		if len(parts) != 3 || len(parts[2]) != 342 {
			t.Fatalf("jwtShaped(%d): %d parts, not header.claims.signature", n, len(parts))
		}
		if len(tok) < n || len(tok) > n+40 {
			t.Errorf("jwtShaped(%d) is %d bytes", n, len(tok))
		}
	}
}

// TestPerRequest: the table's CPU and context-switch columns. 38 clock
// ticks (0.38 s) over 10,000 requests are 38 µs a request, the unit of
// issue 14.
func TestPerRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"cpu", usPerRequest(38, 10000), 38},
		{"cpu, one tick", usPerRequest(1, 1), 10000},
		{"switches", perRequest(11500, 10000), 1.15},
		{"no requests", perRequest(5, 0), 5},
	} {
		if diff := tc.got - tc.want; diff > 1e-9 || diff < -1e-9 {
			t.Errorf("%s: %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseCtxt(t *testing.T) {
	stat := "cpu  10 0 20 300 0 0 0 0 0 0\ncpu0 5 0 10 150 0 0 0 0 0 0\nintr 123 4 5\nctxt 987654321\nbtime 1764900000\n"
	if n, err := parseCtxt([]byte(stat)); err != nil || n != 987654321 {
		t.Errorf("parseCtxt = %d, %v; want 987654321", n, err)
	}
	if _, err := parseCtxt([]byte("cpu  1 2 3\n")); err == nil {
		t.Error("parseCtxt without a ctxt line: no error")
	}
	a, err := ctxtSwitches()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := ctxtSwitches(); b < a || a <= 0 {
		t.Errorf("/proc/stat ctxt went from %d to %d", a, b)
	}
}
