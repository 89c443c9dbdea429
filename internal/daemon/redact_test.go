package daemon

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// TestFasthttpLoggerRedacts: fasthttp quotes malformed request bytes in its
// messages even with SecureErrorLogMessage; the logger keeps the addresses
// and drops the rest.
func TestFasthttpLoggerRedacts(t *testing.T) {
	var buf bytes.Buffer
	l := FasthttpLogger{Log: zerolog.New(&buf)}
	l.Printf("error when serving connection %q<->%q: %v", "127.0.0.1:8081", "[::1]:5555",
		`error when reading request headers: malformed mime header: missing colon: "Cookie example-at=SECRET\"VALUE": buffer size=161`)
	got := buf.String()
	for _, want := range []string{`\"127.0.0.1:8081\"`, `\"[::1]:5555\"`, `missing colon: \"[redacted]\": buffer size=161`} {
		if !strings.Contains(got, want) {
			t.Errorf("log line %s lacks %s", got, want)
		}
	}
	if strings.Contains(got, "SECRET") || strings.Contains(got, "VALUE") {
		t.Errorf("log line %s holds the cookie", got)
	}
}
