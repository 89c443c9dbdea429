package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestWritePrometheus(t *testing.T) {
	r := NewRegistry()
	a := r.Counter("th_requests_total", "Requests.", "route", "/api/", "status", "200")
	b := r.Counter("th_requests_total", "Requests.", "route", "/api/", "status", "401")
	if r.Counter("th_requests_total", "Requests.", "route", "/api/", "status", "200") != a {
		t.Fatal("the same name and labels gave another counter")
	}
	a.Add(3)
	b.Inc()
	r.Counter("th_odd_total", "Odd \"labels\".", "v", "a\"b\\c\nd").Inc()
	h := r.Histogram("th_latency_seconds", "Latency.", []float64{0.001, 0.01})
	h.Observe(500 * time.Microsecond)
	h.Observe(5 * time.Millisecond)
	h.Observe(time.Second)
	r.GaugeFunc("th_up", "Up.", func() float64 { return 1 })
	var out strings.Builder
	if err := r.WritePrometheus(&out); err != nil {
		t.Fatal(err)
	}
	want := `# HELP th_requests_total Requests.
# TYPE th_requests_total counter
th_requests_total{route="/api/",status="200"} 3
th_requests_total{route="/api/",status="401"} 1
# HELP th_odd_total Odd "labels".
# TYPE th_odd_total counter
th_odd_total{v="a\"b\\c\nd"} 1
# HELP th_latency_seconds Latency.
# TYPE th_latency_seconds histogram
th_latency_seconds_bucket{le="0.001"} 1
th_latency_seconds_bucket{le="0.01"} 2
th_latency_seconds_bucket{le="+Inf"} 3
th_latency_seconds_sum 1.0055
th_latency_seconds_count 3
# HELP th_up Up.
# TYPE th_up gauge
th_up 1
`
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
	for series, v := range map[string]string{
		`th_requests_total{route="/api/",status="401"}`: "1",
		"th_latency_seconds_count":                      "3",
		"th_up":                                         "1",
		"th_latency_seconds":                            "", // a family, not a series
		"th_requests_total":                             "", // needs its labels
		"th_missing":                                    "",
	} {
		if got, ok := Sample(out.String(), series); got != v || ok != (v != "") {
			t.Errorf("Sample(%s) = %q, %v; want %q", series, got, ok, v)
		}
	}
}

func TestConcurrentUpdates(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "C.")
	h := r.Histogram("h_seconds", "H.", DefaultLatencyBuckets, "route", "x")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Inc()
				h.Observe(time.Millisecond)
			}
		})
	}
	wg.Wait()
	var out strings.Builder
	r.WritePrometheus(&out)
	if c.Value() != 8000 || !strings.Contains(out.String(), `h_seconds_count{route="x"} 8000`) {
		t.Fatalf("counts lost:\n%s", out.String())
	}
}
