package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/version"
)

// fakeService records what Main asks of it. Serve blocks until Shutdown,
// or returns serveErr at once when it is set.
type fakeService struct {
	serveErr  error
	serving   chan struct{} // closed when Serve starts
	stop      chan struct{} // closed by Shutdown
	reloads   chan string   // paths given to ReloadFile
	reloadErr error
	gate      chan struct{} // unless nil, ReloadFile returns once it is closed
	begun     chan struct{} // closed by BeginShutdown
	shutdowns atomic.Int32
}

func newFakeService() *fakeService {
	return &fakeService{serving: make(chan struct{}), stop: make(chan struct{}), reloads: make(chan string, 4), begun: make(chan struct{})}
}

func (s *fakeService) BeginShutdown() {
	select {
	case <-s.begun:
	default:
		close(s.begun)
	}
}

func (s *fakeService) Serve() error {
	close(s.serving)
	if s.serveErr != nil {
		return s.serveErr
	}
	<-s.stop
	return nil
}

func (s *fakeService) ReloadFile(path string, getenv func(string) string) error {
	s.reloads <- path + " " + getenv("K")
	if s.gate != nil {
		<-s.gate
	}
	return s.reloadErr
}

func (s *fakeService) Shutdown(ctx context.Context) error {
	if s.shutdowns.Add(1) == 1 {
		close(s.stop)
	}
	return nil
}

// mainResult is what one call of Main returned and wrote.
type mainResult struct {
	code           int
	stdout, stderr string
}

// runMain calls Main as the binary "tst" would, with an environment where
// K is "v"; cfg (or loadErr) is what loading the file returns.
func runMain(t *testing.T, args []string, cfg *Config, loadErr error) mainResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "K" {
			return "v"
		}
		return ""
	}
	load := func(path string, getenv func(string) string) (*Config, error) {
		if path != "f.yaml" || getenv("K") != "v" {
			t.Errorf("load(%q, K=%q), want f.yaml and K=v", path, getenv("K"))
		}
		return cfg, loadErr
	}
	code := Main("tst", args, getenv, &stdout, &stderr, load)
	return mainResult{code, stdout.String(), stderr.String()}
}

func TestMainCommandLine(t *testing.T) {
	started := false
	cfg := &Config{
		Summary: "keys: 1",
		Start: func(zerolog.Logger) (Service, error) {
			started = true
			return nil, errors.New("listen: address already in use")
		},
	}
	tests := []struct {
		name        string
		args        []string
		loadErr     error
		wantCode    int
		wantStdout  string   // exact
		wantStderr  []string // substrings
		wantStarted bool
	}{
		{name: "version", args: []string{"-version"}, wantCode: 0, wantStdout: "tst " + version.String() + "\n"},
		{name: "no -config", args: nil, wantCode: 2, wantStderr: []string{"tst: -config FILE is required\n", "Usage of tst:", "-check-config"}},
		{name: "-check-config without -config", args: []string{"-check-config"}, wantCode: 2, wantStderr: []string{"tst: -config FILE is required\n"}},
		{name: "stray argument", args: []string{"-config", "f.yaml", "extra"}, wantCode: 2, wantStderr: []string{"tst: -config FILE is required\n"}},
		{name: "unknown flag", args: []string{"-confg", "f.yaml"}, wantCode: 2, wantStderr: []string{"flag provided but not defined: -confg"}},
		{name: "check", args: []string{"-config", "f.yaml", "-check-config"}, wantCode: 0, wantStdout: "tst: f.yaml: configuration OK (keys: 1)\n"},
		{name: "check a bad file", args: []string{"-config", "f.yaml", "-check-config"}, loadErr: errors.New("tst: config: colour: unknown"), wantCode: 1, wantStderr: []string{"tst: config: colour: unknown\n"}},
		{name: "run a bad file", args: []string{"-config", "f.yaml"}, loadErr: errors.New("tst: config: colour: unknown"), wantCode: 1, wantStderr: []string{"tst: config: colour: unknown\n"}},
		{name: "start fails", args: []string{"-config", "f.yaml"}, wantCode: 1, wantStderr: []string{"cannot start", "address already in use"}, wantStarted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			started = false
			r := runMain(t, tt.args, cfg, tt.loadErr)
			if r.code != tt.wantCode {
				t.Errorf("exit status %d, want %d; stderr %q", r.code, tt.wantCode, r.stderr)
			}
			if r.stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", r.stdout, tt.wantStdout)
			}
			for _, s := range tt.wantStderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr %q, want it to contain %q", r.stderr, s)
				}
			}
			if tt.loadErr != nil && r.stderr != tt.loadErr.Error()+"\n" {
				t.Errorf("stderr %q, want the load error alone", r.stderr)
			}
			if started != tt.wantStarted {
				t.Errorf("Start called: %v, want %v", started, tt.wantStarted)
			}
		})
	}
}

// TestMainWarnings: a file's warnings (deprecated spellings) are printed
// by -check-config on stderr, its OK line staying alone on stdout, and
// logged at warn when the daemon starts, before anything else.
func TestMainWarnings(t *testing.T) {
	cfg := &Config{
		Summary:  "keys: 1",
		Warnings: []string{"cors_enabled (line 3) is deprecated: write cors.enabled", "cookie_format (line 4) is deprecated: write cookie.format"},
		Log:      settings.LogSettings{Format: "json"},
		Start:    func(zerolog.Logger) (Service, error) { return nil, errors.New("listen: address already in use") },
	}
	r := runMain(t, []string{"-config", "f.yaml", "-check-config"}, cfg, nil)
	want := "tst: f.yaml: warning: cors_enabled (line 3) is deprecated: write cors.enabled\ntst: f.yaml: warning: cookie_format (line 4) is deprecated: write cookie.format\n"
	if r.code != 0 || r.stdout != "tst: f.yaml: configuration OK (keys: 1)\n" || r.stderr != want {
		t.Errorf("-check-config: exit %d, stdout %q, stderr %q; want 0, the OK line, and stderr %q", r.code, r.stdout, r.stderr, want)
	}
	r = runMain(t, []string{"-config", "f.yaml"}, cfg, nil)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 3 {
		t.Fatalf("stderr %q, want two warnings and the start failure", r.stderr)
	}
	for i, w := range cfg.Warnings {
		if !strings.Contains(lines[i], `"level":"warn"`) || !strings.Contains(lines[i], `"config":"f.yaml"`) || !strings.Contains(lines[i], w) {
			t.Errorf("log line %d %q, want warning %q at warn", i, lines[i], w)
		}
	}
}

func TestMainServeFails(t *testing.T) {
	srv := newFakeService()
	srv.serveErr = errors.New("accept: too many open files")
	cfg := &Config{Log: settings.LogSettings{Format: "json"}, Start: func(zerolog.Logger) (Service, error) { return srv, nil }}
	r := runMain(t, []string{"-config", "f.yaml"}, cfg, nil)
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
	if srv.shutdowns.Load() != 1 {
		t.Errorf("Shutdown called %d times, want once (it removes Unix sockets)", srv.shutdowns.Load())
	}
	if !strings.Contains(r.stderr, `"message":"server stopped"`) || !strings.Contains(r.stderr, "too many open files") {
		t.Errorf("stderr %q, want the failure logged", r.stderr)
	}
}

// TestMainSignals sends SIGHUP and then SIGTERM to the test process while
// Main serves: Main has caught them from before it loaded the file until it
// returns, so they reach it rather than ending the process.
func TestMainSignals(t *testing.T) {
	srv := newFakeService()
	srv.reloadErr = errors.New("tst: config: colour: unknown")
	cfg := &Config{Log: settings.LogSettings{Format: "json"}, Timeouts: settings.ServerTimeouts{Shutdown: time.Second}, Start: func(zerolog.Logger) (Service, error) { return srv, nil }}
	done := make(chan mainResult, 1)
	go func() { done <- runMain(t, []string{"-config", "f.yaml"}, cfg, nil) }()
	kill := func(sig syscall.Signal) {
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-srv.serving:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve was not called within 10s")
	}
	kill(syscall.SIGHUP)
	select {
	case got := <-srv.reloads:
		if got != "f.yaml v" {
			t.Errorf("ReloadFile got path and K %q, want %q", got, "f.yaml v")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGHUP did not reload within 10s")
	}
	kill(syscall.SIGTERM)
	var r mainResult
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not return within 10s of SIGTERM")
	}
	if r.code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0; stderr %q", r.code, r.stderr)
	}
	if srv.shutdowns.Load() != 1 {
		t.Errorf("Shutdown called %d times, want once", srv.shutdowns.Load())
	}
	for _, want := range []string{"configuration reload refused", "colour: unknown", `"signal":"terminated"`, `"message":"draining"`, `"message":"stopped"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}

// TestSIGHUPBurst: a burst of SIGHUPs, which arrives while the daemon is
// busy reloading, crowds out neither the SIGTERM after it nor, in a proxy
// worker (which ignores SIGHUP), the supervisor's next WorkerReload: the
// supervisor asks once and waits, so a dropped WorkerReload would leave
// the worker on its old text, and a dropped SIGTERM the daemon running.
func TestSIGHUPBurst(t *testing.T) {
	for _, worker := range []string{"", "0"} {
		t.Run("worker="+worker, func(t *testing.T) {
			srv := newFakeService()
			srv.gate = make(chan struct{})
			cfg := &Config{Log: settings.LogSettings{Format: "json"}, Worker: worker, Timeouts: settings.ServerTimeouts{Shutdown: time.Second},
				Start: func(zerolog.Logger) (Service, error) { return srv, nil }}
			done := make(chan mainResult, 1)
			go func() { done <- runMain(t, []string{"-config", "f.yaml"}, cfg, nil) }()
			kill := func(sig syscall.Signal) {
				if err := syscall.Kill(os.Getpid(), sig); err != nil {
					t.Fatal(err)
				}
			}
			reloaded := func(what string) {
				t.Helper()
				select {
				case <-srv.reloads:
				case <-time.After(5 * time.Second):
					t.Fatalf("%s: no reload within 5s", what)
				}
			}
			reload := syscall.SIGHUP
			if worker != "" {
				reload = WorkerReload
			}
			<-srv.serving
			kill(reload)
			reloaded("the first reload")
			for range 20 { // one at a time, so that none merges with the next
				kill(syscall.SIGHUP)
				time.Sleep(2 * time.Millisecond)
			}
			if worker != "" {
				kill(WorkerReload)
				time.Sleep(20 * time.Millisecond)
				close(srv.gate)
				reloaded("the WorkerReload after 20 SIGHUPs")
			}
			kill(syscall.SIGTERM)
			if worker == "" {
				time.Sleep(20 * time.Millisecond)
				close(srv.gate)
			}
			select {
			case r := <-done:
				if r.code != 0 || worker != "" && !strings.Contains(r.stderr, "SIGHUP ignored") {
					t.Errorf("exit status %d, want 0 (and a worker's SIGHUP logged as ignored); stderr:\n%s", r.code, r.stderr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Main did not return within 5s of the SIGTERM after 20 SIGHUPs")
			}
		})
	}
}

// TestMainShutdownDelay: SIGTERM begins the shutdown (/readyz turns 503) at
// once but drains only after timeouts.shutdown_delay; a second SIGTERM cuts
// the delay short, as an operator who does not want to wait would.
func TestMainShutdownDelay(t *testing.T) {
	srv := newFakeService()
	cfg := &Config{Log: settings.LogSettings{Format: "json"}, Timeouts: settings.ServerTimeouts{ShutdownDelay: time.Hour, Shutdown: time.Second},
		Start: func(zerolog.Logger) (Service, error) { return srv, nil }}
	done := make(chan mainResult, 1)
	go func() { done <- runMain(t, []string{"-config", "f.yaml"}, cfg, nil) }()
	select {
	case <-srv.serving:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve was not called within 10s")
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.begun:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not begin the shutdown within 10s")
	}
	// Within the hour's delay Main neither drains nor returns; a second
	// SIGTERM then ends the delay. (The select below is no sleep: if the
	// delay were ignored, Shutdown would already have been called or be on
	// its way, and the check after the second signal would still see one.)
	select {
	case r := <-done:
		t.Fatalf("Main returned %d during the delay; stderr %q", r.code, r.stderr)
	case <-srv.stop:
		t.Fatal("Shutdown was called during the delay")
	case <-time.After(200 * time.Millisecond):
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var r mainResult
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Main did not return within 10s of the second SIGTERM")
	}
	if r.code != 0 || srv.shutdowns.Load() != 1 {
		t.Errorf("exit status %d, %d Shutdown calls; want 0 and one; stderr %q", r.code, srv.shutdowns.Load(), r.stderr)
	}
	if !strings.Contains(r.stderr, `"delay":3600000`) {
		t.Errorf("stderr lacks the delay in the draining line:\n%s", r.stderr)
	}
}
