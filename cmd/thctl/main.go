// Command thctl generates keys and seals and opens Token Handler cookie
// values, for operators, debugging and minting load-test cookies. `thctl
// help` prints its commands and flags (usage, below); the cookie formats
// are in crypto/FORMAT.md. Prefer -key-file or TH_ENCRYPTION_KEYS to -key:
// an argument is visible to other users in the process list.
package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/tokenhandler/tokenhandler/crypto"
	"github.com/tokenhandler/tokenhandler/internal/settings"
	"github.com/tokenhandler/tokenhandler/internal/version"
	"github.com/tokenhandler/tokenhandler/session"
)

const usage = `usage:
  thctl keygen
  thctl seal [-key HEX[,HEX...] | -key-file FILE] [-format v1|dare] [PLAINTEXT]
  thctl seal [-key ...] -purpose at|auth|id|csrf|login [-format v2] [-session HEX32]
             [-started UNIX] [-expires UNIX | -lifetime 12h] [-chunks N]
             [-issuer ISS [-sub SUB] [-sid SID]] [-app NAME] [PLAINTEXT]
  thctl open [-key HEX[,HEX...] | -key-file FILE] [-purpose P] [-chunks N] [-app NAME] [-v] [COOKIE]
  thctl version

Keys: -key, -key-file (one per line) or TH_ENCRYPTION_KEYS (comma-separated),
in that order of preference; the first key seals, all open.
PLAINTEXT or COOKIE is read from standard input when not given.
seal -purpose writes format v2: bound to its purpose and its chunk count (0:
one cookie; N: to be split into Name.0 ... Name.N-1), with a session envelope.
Without -session a new session ID is printed to stderr as "session HEX"; give
it to the next seal of the same session. -started defaults to now, -lifetime
to 12h. -issuer with -sub and -sid records their digests (never the values).
-app binds a v2 cookie to the application of that name (apps[i].name), as
the daemons of a file with apps seal and open it; left out: a file without apps.
open tries v1 and DARE, then v2 under -purpose and -chunks or under all of
them; -v prints the format, purpose and envelope to stderr.
`

// maxInput bounds what thctl reads from standard input.
const maxInput = 1 << 20

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr))
}

// errUsage makes run print the usage and exit 2.
var errUsage = errors.New("thctl: bad usage")

func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(args, getenv, stdin, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		if err != errUsage {
			fmt.Fprintln(stderr, err)
		}
		fmt.Fprint(stderr, usage)
		return 2
	default:
		fmt.Fprintln(stderr, err)
		return 1
	}
}

// now is the clock seal -started defaults to; tests replace it.
var now = time.Now

func dispatch(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := flag.NewFlagSet("thctl "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFlag := fs.String("key", "", "hex keys, comma-separated, the sealing key first")
	keyFile := fs.String("key-file", "", "file with one hex key per line, the sealing key first")
	var o options
	fs.StringVar(&o.format, "format", "", "cookie format for seal: v1 (default), dare, or v2 (default with -purpose)")
	fs.StringVar(&o.purpose, "purpose", "", "v2 purpose: login, at, auth, id or csrf")
	fs.StringVar(&o.session, "session", "", "v2 session ID, 32 hex characters (default: a new one)")
	fs.Int64Var(&o.started, "started", 0, "v2 session start, Unix seconds (default: now)")
	fs.Int64Var(&o.expires, "expires", 0, "v2 cookie expiry, Unix seconds (default: -started + -lifetime)")
	fs.DurationVar(&o.lifetime, "lifetime", 12*time.Hour, "v2 cookie lifetime from -started")
	fs.IntVar(&o.chunks, "chunks", 0, "v2 chunk count: 0 for one cookie, N for Name.0 ... Name.N-1")
	fs.StringVar(&o.issuer, "issuer", "", "v2: the ID token's iss, for -sub and -sid")
	fs.StringVar(&o.sub, "sub", "", "v2: the ID token's sub, recorded as a digest")
	fs.StringVar(&o.sid, "sid", "", "v2: the ID token's sid, recorded as a digest")
	fs.StringVar(&o.app, "app", "", "v2: the application the cookie belongs to (apps[i].name); empty for a file without apps")
	fs.BoolVar(&o.verbose, "v", false, "open: print the format, purpose and envelope to stderr")
	switch args[0] {
	case "keygen":
		if len(args) != 1 {
			return fmt.Errorf("%w: keygen takes no arguments", errUsage)
		}
		_, err := stdout.Write(append(crypto.GenerateKey().AppendHex(nil), '\n'))
		return err
	case "version", "-version":
		if len(args) != 1 {
			return fmt.Errorf("%w: version takes no arguments", errUsage)
		}
		_, err := fmt.Fprintln(stdout, "thctl", version.String())
		return err
	case "seal", "open":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: %s takes at most one argument", errUsage, args[0])
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if o.purpose != "" {
		p, err := session.ParsePurpose(o.purpose)
		if err != nil {
			return fmt.Errorf("%w: -purpose: %v", errUsage, err)
		}
		o.p = p
	}
	if o.chunks < 0 || o.chunks > session.MaxChunks {
		return fmt.Errorf("%w: -chunks must be 0 to %d", errUsage, session.MaxChunks)
	}
	if args[0] == "seal" {
		if err := o.checkSeal(); err != nil {
			return err
		}
	} else if err := o.checkOpen(); err != nil {
		return err
	}
	ring, err := keyring(*keyFlag, *keyFile, getenv)
	if err != nil {
		return err
	}
	input, err := argOrStdin(fs.Args(), stdin)
	if err != nil {
		return err
	}
	if args[0] == "seal" {
		return o.seal(ring, input, stdout, stderr)
	}
	return o.open(ring, bytes.TrimSpace(input), stdout, stderr)
}

// options are seal's and open's flags.
type options struct {
	format, purpose, session string
	started, expires         int64
	lifetime                 time.Duration
	chunks                   int
	issuer, sub, sid         string
	app                      string
	verbose                  bool
	set                      map[string]bool // the flags given

	f crypto.Format   // filled by checkSeal
	p session.Purpose // parsed from purpose
}

// v2Only are the flags that make sense only for a v2 seal.
var v2Only = []string{"session", "started", "expires", "lifetime", "chunks", "issuer", "sub", "sid", "app"}

func (o *options) checkSeal() error {
	if o.set["v"] {
		return fmt.Errorf("%w: -v applies to open", errUsage)
	}
	switch {
	case o.format != "":
		f, err := crypto.ParseFormat(o.format)
		if err != nil {
			return fmt.Errorf("thctl: -format: %w", err)
		}
		o.f = f
	case o.purpose != "":
		o.f = crypto.FormatV2
	default:
		o.f = crypto.FormatV1
	}
	if o.f != crypto.FormatV2 {
		if o.purpose != "" {
			return fmt.Errorf("%w: -purpose needs format v2: %s cookies carry no purpose", errUsage, o.f)
		}
		for _, name := range v2Only {
			if o.set[name] {
				return fmt.Errorf("%w: -%s needs -purpose (format v2)", errUsage, name)
			}
		}
		return nil
	}
	if o.purpose == "" {
		return fmt.Errorf("%w: -format v2 needs -purpose (login, at, auth, id or csrf)", errUsage)
	}
	if o.set["app"] {
		if err := settings.CheckAppName("-app", o.app); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if o.set["expires"] && o.set["lifetime"] {
		return fmt.Errorf("%w: give -expires or -lifetime, not both", errUsage)
	}
	if o.lifetime < time.Second {
		return fmt.Errorf("%w: -lifetime must be at least 1s", errUsage)
	}
	if (o.sub != "" || o.sid != "") && o.issuer == "" {
		return fmt.Errorf("%w: -sub and -sid need -issuer: their digests include it", errUsage)
	}
	if o.issuer != "" && o.sub == "" && o.sid == "" {
		return fmt.Errorf("%w: -issuer without -sub or -sid records nothing", errUsage)
	}
	return nil
}

func (o *options) checkOpen() error {
	for _, name := range v2Only {
		if o.set[name] && name != "chunks" && name != "app" {
			return fmt.Errorf("%w: -%s applies to seal", errUsage, name)
		}
	}
	return nil
}

// envelope builds the v2 envelope from the flags, minting a session ID when
// none was given.
func (o *options) envelope() (env session.Envelope, minted bool, err error) {
	if o.session == "" {
		env.ID, minted = session.NewID(), true
	} else if b, err := hex.DecodeString(o.session); err != nil || len(b) != len(env.ID) {
		return env, false, fmt.Errorf("%w: -session must be %d hex characters", errUsage, 2*len(env.ID))
	} else {
		env.ID = session.ID(b)
	}
	env.Started = now().Unix()
	if o.set["started"] {
		env.Started = o.started
	}
	if o.set["expires"] {
		env.Expires = o.expires
	} else {
		secs := int64(o.lifetime / time.Second)
		if env.Started > math.MaxInt64-secs {
			return env, false, fmt.Errorf("%w: -started + -lifetime is past the end of time", errUsage)
		}
		env.Expires = env.Started + secs
	}
	if o.sub != "" {
		env.Sub = session.HashSub(o.issuer, o.sub)
	}
	if o.sid != "" {
		env.SID = session.HashSID(o.issuer, o.sid)
	}
	return env, minted, nil
}

func (o *options) seal(ring *crypto.Keyring, input []byte, stdout, stderr io.Writer) error {
	if o.f != crypto.FormatV2 {
		cookie, err := ring.Seal(nil, input, o.f)
		if err != nil {
			return fmt.Errorf("thctl: %w", err)
		}
		_, err = stdout.Write(append(cookie, '\n'))
		return err
	}
	env, minted, err := o.envelope()
	if err != nil {
		return err
	}
	codec, err := session.NewCodec(ring, crypto.FormatV2)
	if err != nil {
		return fmt.Errorf("thctl: %w", err)
	}
	codec = codec.WithApp(o.app)
	cookie, err := codec.Seal(nil, o.p, o.chunks, &env, input)
	if err != nil {
		return fmt.Errorf("thctl: %w", err)
	}
	if minted {
		fmt.Fprintf(stderr, "session %x\n", env.ID[:])
	}
	_, err = stdout.Write(append(cookie, '\n'))
	return err
}

func (o *options) open(ring *crypto.Keyring, cookie []byte, stdout, stderr io.Writer) error {
	codec, err := session.NewCodec(ring, crypto.FormatV2, crypto.FormatV1, crypto.FormatDARE)
	if err != nil {
		return fmt.Errorf("thctl: %w", err)
	}
	codec = codec.WithApp(o.app)
	purposes := []session.Purpose{o.p}
	if o.p == 0 {
		purposes = []session.Purpose{session.Login, session.AccessToken, session.RefreshToken, session.IDToken, session.CSRF}
	}
	chunks := []int{o.chunks}
	if !o.set["chunks"] {
		chunks = []int{0, 2, 3, 4, 5, 6, 7, 8, 1}
	}
	for _, p := range purposes {
		for _, n := range chunks {
			var env session.Envelope
			// v1 and DARE cookies carry no purpose and open at the first
			// try; Open reports their format.
			value, f, err := codec.Open(nil, cookie, p, n, &env)
			if err != nil {
				continue
			}
			if o.verbose && f != crypto.FormatV2 {
				fmt.Fprintf(stderr, "format %s: no purpose, no session\n", f)
			} else if o.verbose {
				printEnvelope(stderr, p, n, &env)
			}
			_, err = stdout.Write(append(value, '\n'))
			return err
		}
	}
	return errors.New("thctl: cannot open the cookie: wrong keys, wrong -purpose or -chunks, or not a cookie value (base64url without padding)")
}

// printEnvelope writes what a v2 cookie says about itself; none of it is
// secret (the sid and sub are digests).
func printEnvelope(w io.Writer, p session.Purpose, chunks int, env *session.Envelope) {
	ts := func(unix int64) string {
		return time.Unix(unix, 0).UTC().Format(time.RFC3339)
	}
	digest := func(d session.Digest) string {
		if d == (session.Digest{}) {
			return "none"
		}
		return hex.EncodeToString(d[:])
	}
	state := "live"
	if now().Unix() >= env.Expires {
		state = "expired"
	}
	fmt.Fprintf(w, "format v2, purpose %s, chunks %d\nsession %x\nstarted %d (%s)\nexpires %d (%s, %s)\nsid %s\nsub %s\n",
		p, chunks, env.ID[:], env.Started, ts(env.Started), env.Expires, ts(env.Expires), state, digest(env.SID), digest(env.Sub))
}

// keyring builds the ring from the first source given: -key, -key-file or
// TH_ENCRYPTION_KEYS.
func keyring(flagKeys, file string, getenv func(string) string) (*crypto.Keyring, error) {
	var keys []string
	var source string
	switch {
	case flagKeys != "" && file != "":
		return nil, fmt.Errorf("%w: give -key or -key-file, not both", errUsage)
	case flagKeys != "":
		keys, source = strings.Split(flagKeys, ","), "-key"
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("thctl: -key-file: %w", err)
		}
		for line := range strings.Lines(string(data)) {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				keys = append(keys, line)
			}
		}
		source = "-key-file " + file
	case getenv("TH_ENCRYPTION_KEYS") != "":
		keys, source = strings.Split(getenv("TH_ENCRYPTION_KEYS"), ","), "TH_ENCRYPTION_KEYS"
	default:
		return nil, fmt.Errorf("%w: no key: give -key or -key-file, or set TH_ENCRYPTION_KEYS", errUsage)
	}
	for i := range keys {
		keys[i] = strings.TrimSpace(keys[i])
	}
	ring, err := crypto.ParseKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("thctl: %s: %w", source, err)
	}
	return ring, nil
}

func argOrStdin(args []string, stdin io.Reader) ([]byte, error) {
	if len(args) == 1 {
		return []byte(args[0]), nil
	}
	data, err := io.ReadAll(io.LimitReader(stdin, maxInput+1))
	if err != nil {
		return nil, fmt.Errorf("thctl: reading standard input: %w", err)
	}
	if len(data) > maxInput {
		return nil, fmt.Errorf("thctl: standard input is over %d bytes", maxInput)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	return bytes.TrimSuffix(data, []byte("\r")), nil
}
