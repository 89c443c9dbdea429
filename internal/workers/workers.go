// Package workers runs the proxy as a set of worker processes under a
// supervisor (proxy setting workers, issue #14), as NGINX runs one
// single-threaded worker per core: each worker is the same binary with one
// Go processor, which spares the runtime's thread hand-offs on a busy
// machine. The supervisor starts and restarts the workers, passes SIGHUP
// (as daemon.WorkerReload) and SIGTERM on to them, and owns metrics_listen, where /metrics is
// one page for the whole set (docs/operations.md, "Workers").
package workers

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"github.com/tokenhandler/tokenhandler/internal/daemon"
)

// The environment variables the supervisor sets for a worker: its index
// (0 to N-1, on its every log line as "worker"), the address it serves and
// that of its private metrics listener. A process is a worker only with all
// three set and its supervisor's descriptors inherited: the checked
// configuration on ConfigFD (a memfd, read as ConfigPath), and the write
// end of a pipe on ReadyFD, on which the worker writes a byte each time it
// has loaded the configuration (at start, its signal handlers installed,
// and after each reload the supervisor asked for with daemon.WorkerReload;
// a worker ignores SIGHUP, so that one sent to every process of the set
// reaches the supervisor's check alone).
const (
	ConfigFD, ReadyFD = 3, 4
	ConfigPath        = "/proc/self/fd/3"

	EnvWorker  = "TH_PROXY_WORKER"
	EnvListen  = "TH_PROXY_WORKER_LISTEN"
	EnvMetrics = "TH_PROXY_WORKER_METRICS"
)

// Listen is the address worker i serves for the set's listen address: a
// Unix socket "unix:/path" becomes "unix:/path.<i>", one socket per worker,
// which the rendered NGINX upstream lists (package nginx); a TCP address
// stays, every worker binding it with SO_REUSEPORT.
func Listen(listen string, i int) string {
	if strings.HasPrefix(listen, "unix:") {
		return listen + "." + strconv.Itoa(i)
	}
	return listen
}

// Config is what [Supervise] needs. It may be copied.
type Config struct {
	Workers               int // 2 to 64
	Listen, MetricsListen string
	// ShutdownDelay and ShutdownTimeout are the workers' (timeouts.*):
	// a worker still running 5 s after both, once SIGTERM was forwarded,
	// is killed.
	ShutdownDelay, ShutdownTimeout time.Duration
	// Path is the configuration file; Reload checks its text, at start
	// and on SIGHUP.
	Path   string
	Reload func(data []byte) (Config, error)
	// Apps are the names of the configuration's applications (issue #15),
	// nil for a file without apps: /readyz lists them and answers
	// /readyz?app=NAME, each ready when the set is.
	Apps []string
}

// The restart backoff: 100 ms doubling to 5 s, back to 100 ms once a
// worker has run for 30 s.
const (
	minBackoff, maxBackoff, steady = 100 * time.Millisecond, 5 * time.Second, 30 * time.Second
)

// supervisor is one run of Supervise.
type supervisor struct {
	log      zerolog.Logger
	dir      string // 0700: the workers' metrics sockets <i>.sock
	client   *fasthttp.Client
	restarts *metrics.Counter
	memLimit int64 // each worker's GOMEMLIMIT, or 0

	stopping atomic.Bool   // SIGTERM or SIGINT has arrived; set under mu
	stop     chan struct{} // closed when stopping
	mu       sync.Mutex
	cfg      Config        // as Supervise got it
	drain    time.Duration // the latest checked configuration's shutdown_delay + shutdown
	data     []byte        // its text
	apps     []string      // its applications' names
	version  int           // of data, counting from 1
	procs    []*proc       // the running worker i, or nil
}

// proc is a running worker, guarded by supervisor.mu.
type proc struct {
	p       *os.Process
	conf    *os.File // its ConfigFD
	version int      // of the text in conf
	ready   bool     // its first load is done: its signal handlers are installed
	busy    bool     // a load (its start, a reload) not yet done
	exited  bool
}

// Supervise runs cfg.Workers copies of the running binary as workers
// (/proc/self/exe: the supervisor's own binary even once a package upgrade
// has replaced the file, which is why ps shows them as "exe"), each with
// GOMAXPROCS=1, its share of GOMEMLIMIT, its index and addresses in the
// environment (EnvWorker, EnvListen, EnvMetrics) and the text of the last configuration the supervisor checked on
// ConfigFD, a memfd that ends with the worker, never a file on disk (a
// worker restarted after a bad edit still starts); it serves
// metrics_listen, restarts a worker that exits, and passes on SIGHUP (as
// daemon.WorkerReload, once the file checks) and SIGTERM or SIGINT, as
// docs/proxy.md ("Workers") says. A worker is signalled only once ready
// (ReadyFD): a reload for a worker still loading is sent, with the newer
// text, once it has loaded;
// a SIGTERM once it is ready. hups carries SIGHUP and signals SIGTERM and
// SIGINT (daemon.Main's channels). It returns 0 once every worker has
// stopped with status 0, else 1.
//
// A TCP listen is first bound once without SO_REUSEPORT and closed, so
// that a port held by another process (a second set, say) stops the start
// instead of sharing its traffic; a process binding it between that probe
// and the workers is not caught.
func Supervise(cfg Config, log zerolog.Logger, hups, signals <-chan os.Signal) int {
	if !strings.HasPrefix(cfg.Listen, "unix:") {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			log.Error().Err(err).Msg("cannot start: listen")
			return 1
		}
		ln.Close()
	}
	dir, err := os.MkdirTemp("", "oauth-proxy-workers-") // 0700
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	defer os.RemoveAll(dir)
	s := &supervisor{cfg: cfg, log: log, dir: dir, procs: make([]*proc, cfg.Workers), stop: make(chan struct{})}
	// The supervisor keeps 1/8 of GOMEMLIMIT (it buffers the workers'
	// metrics pages), the workers share the rest.
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		debug.SetMemoryLimit(limit / 8)
		s.memLimit = (limit - limit/8) / int64(cfg.Workers)
	}
	s.client = &fasthttp.Client{Dial: func(addr string) (net.Conn, error) {
		i, _, _ := strings.Cut(addr, ":") // "<i>:80"
		return net.DialTimeout("unix", filepath.Join(dir, i+".sock"), 2*time.Second)
	}}
	if _, err := s.install(); err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	reg := metrics.NewSet()
	s.restarts = reg.NewCounter("oauth_proxy_worker_restarts_total")
	if cfg.MetricsListen != "" {
		ln, err := daemon.Listen(cfg.MetricsListen)
		if err != nil {
			log.Error().Err(err).Msg("cannot start: metrics_listen")
			return 1
		}
		defer daemon.RemoveSocket(cfg.MetricsListen)
		ops := daemon.OpsHandler(reg, s.ready, s.appStatus)
		srv := daemon.OpsServer(func(ctx *fasthttp.RequestCtx) {
			ops(ctx)
			if string(ctx.Path()) == "/metrics" {
				ctx.SetBody(merge(s.fetch("/metrics"), ctx.Response.Body()))
			}
		}, log)
		go srv.Serve(ln)
		defer srv.Shutdown()
	}
	log.Info().Int("workers", cfg.Workers).Str("listen", cfg.Listen).Str("metrics_listen", cfg.MetricsListen).Msg("oauth-proxy supervising workers")

	var wg sync.WaitGroup
	failed := make(chan struct{}, cfg.Workers)
	for i := range cfg.Workers {
		wg.Go(func() {
			if !s.run(i) {
				failed <- struct{}{}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var kill <-chan time.Time
	for {
		select {
		case <-hups:
			if !s.stopping.Load() {
				s.reload()
			}
		case sig := <-signals:
			if !s.stopping.Load() {
				log.Info().Str("signal", sig.String()).Msg("draining: SIGTERM forwarded to every worker")
				s.mu.Lock()
				kill = time.After(s.drain + 5*time.Second)
				s.mu.Unlock()
			}
			s.signal(syscall.SIGTERM) // a second one cuts the workers' shutdown_delay short
		case <-kill:
			log.Error().Msg("workers still running after the shutdown timeout: killed")
			s.signal(syscall.SIGKILL)
			kill = nil
		case <-done:
			for i := range cfg.Workers { // a worker that was killed leaves its socket
				daemon.RemoveSocket(Listen(cfg.Listen, i))
			}
			if len(failed) > 0 {
				log.Error().Int("failed", len(failed)).Msg("stopped; some workers did not stop cleanly")
				return 1
			}
			log.Info().Msg("stopped")
			return 0
		}
	}
}

// signal sends SIGTERM or SIGKILL to every running worker, SIGTERM only
// to those ready (the others get it once ready), and stops the restarts.
func (s *supervisor) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.CompareAndSwap(false, true) {
		close(s.stop)
	}
	for _, w := range s.procs {
		if w != nil && (w.ready || sig == syscall.SIGKILL) {
			w.p.Signal(sig)
		}
	}
}

// reload checks the file and, when it is good, hands its text to every
// worker that is not loading; the others get it once they have loaded.
func (s *supervisor) reload() {
	next, err := s.install()
	if err != nil {
		s.log.Error().Err(err).Msg("configuration reload refused; the running configuration stays, nothing forwarded to the workers")
		return
	}
	if next.Workers != s.cfg.Workers || next.Listen != s.cfg.Listen || next.MetricsListen != s.cfg.MetricsListen {
		s.log.Warn().Msg("workers, listen and metrics_listen changed: they take effect at the next restart")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.procs {
		if w != nil && w.ready && !w.busy {
			s.hup(w)
		}
	}
}

// hup writes the latest text to w's ConfigFD and sends it
// daemon.WorkerReload; the
// caller holds mu and has checked that w is ready and not loading, so that
// no worker reads a text half written.
func (s *supervisor) hup(w *proc) {
	err := w.conf.Truncate(0)
	if err == nil {
		_, err = w.conf.WriteAt(s.data, 0)
	}
	if err != nil {
		s.log.Error().Err(err).Msg("configuration not handed to a worker")
		return
	}
	w.version, w.busy = s.version, true
	w.p.Signal(daemon.WorkerReload)
}

// install loads and checks the configuration file and, when it is good,
// makes its text the one the workers load, so that no worker ever reads a
// text the supervisor has not checked.
func (s *supervisor) install() (Config, error) {
	data, err := os.ReadFile(s.cfg.Path)
	if err != nil {
		return Config{}, err
	}
	c, err := s.cfg.Reload(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", s.cfg.Path, err)
	}
	s.mu.Lock()
	s.data, s.drain, s.apps = data, c.ShutdownDelay+c.ShutdownTimeout, c.Apps
	s.version++
	s.mu.Unlock()
	return c, nil
}

// loaded reads w's ReadyFD pipe: each byte is a load done. The first makes
// w ready (and sends the SIGTERM it missed, once: a second would cut its
// shutdown_delay short); a text newer than w's is then handed over.
func (s *supervisor) loaded(w *proc, ready *os.File) {
	defer ready.Close()
	var b [1]byte
	for {
		if _, err := ready.Read(b[:]); err != nil {
			return
		}
		s.mu.Lock()
		first := !w.ready
		w.ready, w.busy = true, false
		switch {
		case w.exited, s.stopping.Load() && !first:
		case s.stopping.Load():
			w.p.Signal(syscall.SIGTERM)
		case w.version < s.version:
			s.hup(w)
		}
		s.mu.Unlock()
	}
}

// run keeps worker i running until the supervisor stops; it reports
// whether the worker's last run ended with status 0.
func (s *supervisor) run(i int) bool {
	log := s.log.With().Str("worker", strconv.Itoa(i)).Logger() // as the worker's own lines and its metrics label say it
	env := append(os.Environ(), "GOMAXPROCS=1", EnvWorker+"="+strconv.Itoa(i), EnvListen+"="+Listen(s.cfg.Listen, i), EnvMetrics+"=unix:"+s.sock(i))
	if s.memLimit > 0 {
		env = append(env, "GOMEMLIMIT="+strconv.FormatInt(s.memLimit, 10))
	}
	backoff := minBackoff
	for first := true; ; first = false {
		cmd := exec.Command("/proc/self/exe", "-config", ConfigPath)
		cmd.Args[0] = os.Args[0] // what ps shows
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stderr
		// Pdeathsig is tied to the forking thread, which Go keeps for the
		// process's life (nothing here locks a goroutine to a thread). A
		// process group of its own: a terminal's Ctrl-C reaches the
		// supervisor alone, which forwards it once.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
		s.mu.Lock()
		if s.stopping.Load() {
			s.mu.Unlock()
			return true
		}
		if !first {
			s.restarts.Inc()
		}
		w, ready, err := s.start(cmd)
		if err == nil {
			s.procs[i] = w
		}
		s.mu.Unlock()
		pid, started := 0, time.Now()
		if err == nil {
			pid = cmd.Process.Pid
			log.Info().Int("pid", pid).Msg("worker started")
			go s.loaded(w, ready)
			err = cmd.Wait()
			s.mu.Lock()
			s.procs[i], w.exited = nil, true
			w.conf.Close()
			s.mu.Unlock()
			if s.stopping.Load() {
				log.Info().Int("pid", pid).Stringer("status", cmd.ProcessState).Msg("worker stopped")
				return cmd.ProcessState.Success()
			}
			if first && cmd.ProcessState.ExitCode() == 1 { // daemon.Main's "cannot start": as a single process, stop
				log.Error().Int("pid", pid).Msg("worker could not start: stopping the set")
				s.signal(syscall.SIGTERM)
				return false
			}
			if time.Since(started) >= steady {
				backoff = minBackoff
			}
		}
		log.Error().Int("pid", pid).AnErr("status", err).Dur("restart_in", backoff).Msg("worker exited; restarting")
		select {
		case <-time.After(backoff):
		case <-s.stop:
			return true
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// start starts cmd with the latest text on ConfigFD and a pipe on
// ReadyFD, whose read end it returns. The caller holds mu.
func (s *supervisor) start(cmd *exec.Cmd) (*proc, *os.File, error) {
	fd, err := unix.MemfdCreate("oauth-proxy.yaml", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("workers: memfd: %w", err)
	}
	w := &proc{conf: os.NewFile(uintptr(fd), "oauth-proxy.yaml"), version: s.version, busy: true}
	r, wr, err := os.Pipe()
	if err == nil {
		if _, err = w.conf.Write(s.data); err == nil {
			cmd.ExtraFiles = []*os.File{w.conf, wr} // ConfigFD, ReadyFD
			err = cmd.Start()
		}
		wr.Close()
	}
	if err != nil {
		w.conf.Close()
		if r != nil {
			r.Close()
		}
		return nil, nil, err
	}
	w.p = cmd.Process
	return w, r, nil
}

// sock is the path of worker i's metrics socket.
func (s *supervisor) sock(i int) string { return filepath.Join(s.dir, strconv.Itoa(i)+".sock") }

// fetch GETs path from every worker's metrics listener at once: the
// bodies of those that answered 200, nil for the others.
func (s *supervisor) fetch(path string) [][]byte {
	pages := make([][]byte, s.cfg.Workers)
	var wg sync.WaitGroup
	for i := range pages {
		wg.Go(func() {
			status, body, err := s.client.GetTimeout(nil, "http://"+strconv.Itoa(i)+path, 5*time.Second)
			if err == nil && status == fasthttp.StatusOK {
				pages[i] = body
			}
		})
	}
	wg.Wait()
	return pages
}

// appStatus is the latest checked configuration's applications, each
// ready when the set is: every worker serves every application.
func (s *supervisor) appStatus() []daemon.AppStatus {
	s.mu.Lock()
	names := slices.Sorted(slices.Values(s.apps)) // as a single process lists them
	s.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	ready := s.ready()
	list := make([]daemon.AppStatus, len(names))
	for i, n := range names {
		list[i] = daemon.AppStatus{Name: n, Ready: ready}
	}
	return list
}

// ready is the supervisor's /readyz: not draining, and every worker ready.
func (s *supervisor) ready() bool {
	if s.stopping.Load() {
		return false
	}
	for _, p := range s.fetch("/readyz") {
		if p == nil {
			return false
		}
	}
	return true
}

// merge returns the workers' metrics pages and the supervisor's own as one
// page in the Prometheus text format: each family once, with its # HELP
// and # TYPE lines from the first page that has them, then the samples of
// every page, those of worker i's with the label worker="<i>" first, the
// supervisor's (its process, the restarts) without one. A nil page (a
// worker down) adds nothing.
func merge(workers [][]byte, own []byte) []byte {
	type family struct {
		page          int
		head, samples bytes.Buffer
	}
	var order []*family
	byName := map[string]*family{}
	get := func(name string, page int) *family {
		f := byName[name]
		if f == nil {
			f = &family{page: page}
			byName[name] = f
			order = append(order, f)
		}
		return f
	}
	for page, text := range append(workers, own) {
		label := ""
		if page < len(workers) {
			label = `worker="` + strconv.Itoa(page) + `"`
		}
		var cur *family
		var curName string
		for line := range strings.Lines(string(text)) {
			if meta, ok := strings.CutPrefix(line, "# "); ok { // # HELP name ..., # TYPE name type
				if f := strings.Fields(meta); len(f) >= 2 {
					cur, curName = get(f[1], page), f[1]
					if cur.page == page {
						cur.head.WriteString(line)
					}
				}
				continue
			}
			end := strings.IndexAny(line, "{ ")
			if end <= 0 {
				continue
			}
			if cur == nil || !strings.HasPrefix(line, curName) { // a sample without metadata
				cur, curName = get(line[:end], page), line[:end]
			}
			switch {
			case label == "":
				cur.samples.WriteString(line)
			case line[end] == '{':
				cur.samples.WriteString(line[:end+1] + label + "," + line[end+1:])
			default:
				cur.samples.WriteString(line[:end] + "{" + label + "}" + line[end:])
			}
		}
	}
	var out bytes.Buffer
	for _, f := range order {
		out.Write(f.head.Bytes())
		out.Write(f.samples.Bytes())
	}
	return out.Bytes()
}
