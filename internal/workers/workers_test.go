package workers

import (
	"testing"
)

// TestMerge: one # HELP and # TYPE per family, from the first page that
// has it; every worker's sample labelled, the supervisor's not; a worker
// that did not answer adds nothing.
func TestMerge(t *testing.T) {
	w0 := "# HELP a_total\n# TYPE a_total counter\na_total{route=\"/api/\"} 1\n# HELP g\n# TYPE g gauge\ng 5\n"
	w2 := "# HELP a_total\n# TYPE a_total counter\na_total{route=\"/api/\"} 2\n# TYPE h histogram\nh_bucket{vmrange=\"1...2\"} 1\nh_sum 1.5\nh_count 1\n"
	own := "# HELP g\n# TYPE g gauge\ng 7\n# HELP r_total\n# TYPE r_total counter\nr_total 0\nbare 3\n"
	want := "# HELP a_total\n# TYPE a_total counter\na_total{worker=\"0\",route=\"/api/\"} 1\na_total{worker=\"2\",route=\"/api/\"} 2\n" +
		"# HELP g\n# TYPE g gauge\ng{worker=\"0\"} 5\ng 7\n" +
		"# TYPE h histogram\nh_bucket{worker=\"2\",vmrange=\"1...2\"} 1\nh_sum{worker=\"2\"} 1.5\nh_count{worker=\"2\"} 1\n" +
		"# HELP r_total\n# TYPE r_total counter\nr_total 0\nbare 3\n"
	if got := string(merge([][]byte{[]byte(w0), nil, []byte(w2)}, []byte(own))); got != want {
		t.Errorf("merge:\n%s\nwant:\n%s", got, want)
	}
}

// TestListen: a Unix socket per worker, a TCP address shared.
func TestListen(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"unix:/run/tokenhandler/proxy.sock", "unix:/run/tokenhandler/proxy.sock.3"},
		{"127.0.0.1:8081", "127.0.0.1:8081"},
	} {
		if got := Listen(c.in, 3); got != c.want {
			t.Errorf("Listen(%q, 3) = %q, want %q", c.in, got, c.want)
		}
	}
}
