package park

import (
	"testing"
	"time"
)

// TestDefaultAfter: parking is off by default on the listeners only a
// reverse proxy on the host reaches, and on (1 s) on the others.
func TestDefaultAfter(t *testing.T) {
	for _, tt := range []struct {
		listen string
		want   time.Duration
	}{
		{"unix:/run/tokenhandler/proxy.sock", 0},
		{"127.0.0.1:8081", 0},
		{"127.0.0.2:8081", 0},
		{"[::1]:8081", 0},
		{"localhost:8081", 0},
		{"0.0.0.0:8081", time.Second},
		{":8081", time.Second},
		{"[::]:8081", time.Second},
		{"192.0.2.10:443", time.Second},
		{"proxy.example.com:443", time.Second},
	} {
		if got := DefaultAfter(tt.listen); got != tt.want {
			t.Errorf("DefaultAfter(%q) = %v, want %v", tt.listen, got, tt.want)
		}
	}
}
