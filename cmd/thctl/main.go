// Command thctl generates keys and seals and opens Token Handler cookie
// values, for operators, debugging and minting load-test cookies.
//
//	thctl keygen
//	thctl seal [-key HEX[,HEX...] | -key-file FILE] [-format v1|dare] [PLAINTEXT]
//	thctl open [-key HEX[,HEX...] | -key-file FILE] [COOKIE]
//	thctl version
//
// Keys come from -key, -key-file (one hex key per line) or TH_ENCRYPTION_KEYS
// (comma-separated), in that order of preference; the first key seals, all
// open. Prefer the file or the environment: a -key argument is visible to
// other users in the process list. Without a PLAINTEXT or COOKIE argument,
// thctl reads it from standard input (one trailing newline dropped).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/tokenhandler/tokenhandler/crypto"
)

const usage = `usage:
  thctl keygen
  thctl seal [-key HEX[,HEX...] | -key-file FILE] [-format v1|dare] [PLAINTEXT]
  thctl open [-key HEX[,HEX...] | -key-file FILE] [COOKIE]
  thctl version

Keys: -key, -key-file (one per line) or TH_ENCRYPTION_KEYS (comma-separated).
PLAINTEXT or COOKIE is read from standard input when not given.
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

func dispatch(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := flag.NewFlagSet("thctl "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keyFlag := fs.String("key", "", "hex keys, comma-separated, the sealing key first")
	keyFile := fs.String("key-file", "", "file with one hex key per line, the sealing key first")
	format := fs.String("format", "v1", "cookie format for seal: v1 or dare")
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
		_, err := fmt.Fprintln(stdout, "thctl", buildVersion())
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
	ring, err := keyring(*keyFlag, *keyFile, getenv)
	if err != nil {
		return err
	}
	input, err := argOrStdin(fs.Args(), stdin)
	if err != nil {
		return err
	}
	if args[0] == "seal" {
		f, err := crypto.ParseFormat(*format)
		if err != nil {
			return fmt.Errorf("thctl: -format: %w", err)
		}
		cookie, err := ring.Seal(nil, input, f)
		if err != nil {
			return fmt.Errorf("thctl: %w", err)
		}
		_, err = stdout.Write(append(cookie, '\n'))
		return err
	}
	plain, err := ring.Open(nil, bytes.TrimSpace(input))
	if err != nil {
		return errors.New("thctl: cannot open the cookie: wrong keys, or not a cookie value (base64url without padding)")
	}
	_, err = stdout.Write(append(plain, '\n'))
	return err
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

// version is stamped at link time by make dist (-X main.version=...).
var version string

// buildVersion is the stamped version; else the main module's version (go
// install module@version, or the VCS stamp of a build in a checkout), or
// "(devel)".
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
