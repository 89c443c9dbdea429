package daemon

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/version"
)

// Service is a daemon's running server, as [Main] drives it.
type Service interface {
	// Serve serves until Shutdown and returns nil after a Shutdown; any
	// other return means the server failed.
	Serve() error
	// ReloadFile applies the configuration file at path; on error the
	// running configuration stays.
	ReloadFile(path string, getenv func(string) string) error
	// BeginShutdown makes /readyz answer 503 while the listener keeps
	// serving, as [Server.BeginShutdown] does.
	BeginShutdown()
	// Shutdown stops accepting connections, lets requests in flight finish
	// until ctx ends, and removes Unix sockets. Main calls it after Serve
	// failed too.
	Shutdown(ctx context.Context) error
}

// Config is what [Main] needs from a daemon's configuration file once it
// has loaded and been validated. It may be copied.
type Config struct {
	// Summary ends the line -check-config prints:
	// "<name>: <path>: configuration OK (<Summary>)".
	Summary string
	// Warnings are what the file should change though it loaded, as a
	// deprecated spelling: -check-config prints each on stderr, and the
	// daemon logs each at warn when it starts.
	Warnings []string
	// Log configures the logger (log.level and log.format).
	Log settings.LogSettings
	// Worker, unless "", is the index of a proxy worker (internal/workers),
	// logged on every line as "worker".
	Worker string
	// Timeouts.ShutdownDelay is how long the listener keeps serving after
	// SIGTERM, with /readyz answering 503, before the drain begins;
	// Timeouts.Shutdown is how long the drain then waits for requests in
	// flight. Main reads no other timeout.
	Timeouts settings.ServerTimeouts
	// Start builds the service and opens its listeners, logging to log.
	// Main calls it once, unless it only checks the configuration, and
	// uses the Service only when the error is nil.
	Start func(log zerolog.Logger) (Service, error)
	// Loaded, unless nil, is called once Start has succeeded and after
	// each reload, done or refused: a worker tells its supervisor so
	// (internal/workers, ReadyFD).
	Loaded func()
	// Supervise, unless nil, runs in place of Start and the signal
	// handling Main describes: the proxy's worker set (internal/workers)
	// gets the logger and every signal, and its return is the exit
	// status.
	Supervise func(log zerolog.Logger, hups, signals <-chan os.Signal) int
}

// Main runs the daemon binary name with the command-line arguments args
// (without the program name) and returns its exit status:
//
//	name -config FILE [-check-config]
//	name -version
//
// load reads and validates the configuration file; its error is printed on
// stderr as it is, and Main returns 1. With -check-config Main prints the
// summary on stdout and returns 0. Otherwise it starts the service with a
// logger writing to stderr and serves until a signal: SIGHUP reloads the
// file, a refused reload is logged and the running configuration stays;
// SIGTERM or SIGINT turn /readyz to 503 at once, keep serving for
// Config.Timeouts.ShutdownDelay (a second SIGTERM or SIGINT cuts it short),
// then drain for up to Config.Timeouts.Shutdown and return 0. A service that fails
// to start or stops by itself returns 1; a usage error 2.
//
// Main catches the signals from before it loads the file until it returns,
// so call it once per process, from main.
func Main(name string, args []string, getenv func(string) string, stdout, stderr io.Writer,
	load func(path string, getenv func(string) string) (*Config, error)) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path to the YAML configuration file (required)")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	printVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *printVersion {
		fmt.Fprintln(stdout, name, version.String())
		return 0
	}
	if *configPath == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: -config FILE is required\n", name)
		fs.Usage()
		return 2
	}
	// Catch signals from the start: a SIGHUP that arrives while the
	// listeners open would otherwise kill the process. os/signal drops a
	// signal the channel has no room for, so SIGHUP has a channel of its
	// own: a burst of them is one reload (it reads the latest file), and
	// cannot take the room of a SIGTERM, or of a worker's WorkerReload.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	cfg, err := load(*configPath, getenv)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if *check {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "%s: %s: warning: %s\n", name, *configPath, w)
		}
		fmt.Fprintf(stdout, "%s: %s: configuration OK (%s)\n", name, *configPath, cfg.Summary)
		return 0
	}

	log := NewLogger(cfg.Log.Level, cfg.Log.Format, stderr)
	if cfg.Worker != "" {
		log = log.With().Str("worker", cfg.Worker).Logger()
		// A worker reloads when its supervisor asks, with WorkerReload: a
		// SIGHUP sent to every process of the set (systemctl kill -s HUP,
		// pkill -HUP) reaches the supervisor's check, not the workers.
		signal.Notify(signals, WorkerReload)
	}
	for _, w := range cfg.Warnings {
		log.Warn().Str("config", *configPath).Msg(w)
	}
	if cfg.Supervise != nil {
		return cfg.Supervise(log, hups, signals)
	}
	srv, err := cfg.Start(log)
	if err != nil {
		log.Error().Err(err).Msg("cannot start")
		return 1
	}
	loaded := func() {
		if cfg.Loaded != nil {
			cfg.Loaded()
		}
	}
	loaded()
	reload := func() {
		if err := srv.ReloadFile(*configPath, getenv); err != nil {
			log.Error().Err(err).Msg("configuration reload refused; the running configuration stays")
		}
		loaded()
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	stopped := func(err error) int {
		log.Error().Err(err).Msg("server stopped")
		srv.Shutdown(context.Background()) // removes Unix sockets
		return 1
	}
	for {
		select {
		case err := <-served:
			return stopped(err)
		case <-hups:
			if cfg.Worker != "" {
				log.Info().Msg("SIGHUP ignored: a worker reloads when its supervisor asks; signal the supervisor")
				continue
			}
			reload()
		case sig := <-signals:
			if sig == WorkerReload {
				reload()
				continue
			}
			log.Info().Str("signal", sig.String()).Dur("delay", cfg.Timeouts.ShutdownDelay).Dur("timeout", cfg.Timeouts.Shutdown).Msg("draining")
			srv.BeginShutdown()
			if failed, err := waitDelay(cfg.Timeouts.ShutdownDelay, signals, served); failed {
				return stopped(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				log.Warn().Err(err).Msg("drain timed out; connections closed")
			}
			<-served
			log.Info().Msg("stopped")
			return 0
		}
	}
}

// waitDelay waits for d while the listener keeps serving, or less if a
// second SIGTERM or SIGINT arrives (a WorkerReload is ignored, as SIGHUP,
// which it does not read: the process is stopping). If the server stopped by itself meanwhile, it
// returns true and Serve's error.
func waitDelay(d time.Duration, signals <-chan os.Signal, served <-chan error) (stopped bool, err error) {
	if d <= 0 {
		return false, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return false, nil
		case sig := <-signals:
			if sig != WorkerReload {
				return false, nil
			}
		case err := <-served:
			return true, err
		}
	}
}

// WorkerReload is the signal with which a worker set's supervisor
// (internal/workers) asks a worker to reload its configuration; a worker
// ignores SIGHUP, which only its supervisor acts on.
const WorkerReload = syscall.SIGUSR1
