package settings

import (
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// Source names the three places one secret may come from (contract §7): a
// setting holding it in the file, a setting naming a file that holds it, and
// an environment variable. Exactly one of them must give it. A Source is
// plain data and may be copied.
type Source struct {
	Setting     string // the secret in the configuration file, as "encryption_keys"
	FileSetting string // path of a file holding it, as "encryption_keys_file"
	Env         string // environment variable holding it, as "TH_ENCRYPTION_KEYS"
	What        string // what the secret is, for messages, as "cookie encryption keys"
}

// pick returns the name of the one source given, and the environment
// variable's value; an empty variable counts as unset.
func (s Source) pick(inFile, inFileSetting bool, getenv func(string) string, noun string) (string, string, error) {
	var env string
	if getenv != nil {
		env = getenv(s.Env)
	}
	var given []string
	if inFile {
		given = append(given, s.Setting)
	}
	if inFileSetting {
		given = append(given, s.FileSetting)
	}
	if env != "" {
		given = append(given, s.Env)
	}
	switch len(given) {
	case 0:
		return "", "", Errorf(s.Setting, "no %s: set %s, %s or the environment variable %s", s.What, s.Setting, s.FileSetting, s.Env)
	case 1:
		return given[0], env, nil
	default:
		return "", "", Errorf(s.Setting, "%s given by both %s: use exactly one source", noun, strings.Join(given, " and "))
	}
}

// readFile reads the file the FileSetting names. A file that group or
// others may read or write is refused, as ssh refuses such a private key: a
// key or secret in it is as good as published to every local account (and to
// every backup that keeps the mode). The message gives the chmod to run.
func (s Source) readFile(path string) (string, error) {
	if path == "" {
		return "", Errorf(s.FileSetting, "must be a file path")
	}
	f, err := os.Open(path)
	if err != nil {
		return "", Errorf(s.FileSetting, "%w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", Errorf(s.FileSetting, "%w", err)
	}
	if err := checkPrivate(path, fi.Mode()); err != nil {
		return "", Errorf(s.FileSetting, "%w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", Errorf(s.FileSetting, "%w", err)
	}
	return string(data), nil
}

// readSecret reads the file the FileSetting names, which holds one secret
// (noun, for the message): one final line ending is dropped, as editors
// add it; an empty secret is an error.
func (s Source) readSecret(path, noun string) (string, error) {
	data, err := s.readFile(path)
	if err != nil {
		return "", err
	}
	data = strings.TrimSuffix(strings.TrimSuffix(data, "\n"), "\r")
	if data == "" {
		return "", Errorf(s.FileSetting, "%s holds no %s: the file is empty", path, noun)
	}
	return data, nil
}

// checkPrivate refuses a mode with any permission bit for group or others.
// Windows has no such bits (os reports 0666 or 0444 for every file), so it
// is not checked there.
func checkPrivate(path string, mode fs.FileMode) error {
	if runtime.GOOS == "windows" || mode.Perm()&0o077 == 0 {
		return nil
	}
	return fmt.Errorf("%s is accessible by group or others (mode %04o): run chmod 600 %s", path, mode.Perm(), path)
}

// PublishedTestKeys are cookie encryption keys printed in this repository
// for tests and examples (README.md, deploy/*.example.yaml, crypto/FORMAT.md
// and the test vectors of crypto/testdata and session/testdata). They are
// published test keys: anyone can read the cookies sealed with them and
// forge their own. Keyring refuses them unless every listener of the daemon
// is on loopback, where only the developer's own browser can reach it. Add
// here any key that gets printed in the repository.
var PublishedTestKeys = []string{
	"7b99279ab87533d3c238db874a842a91ee26a76027f3c03c317504963d2c9926", // contract §3, README, deploy/
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", // crypto and session test vectors
}

// Loopback reports whether every listen address in listeners (as listen
// and metrics_listen take them; "" is no listener) is reachable only from
// this machine: a Unix socket, "localhost", an address of 127.0.0.0/8 or ::1.
// A host left out (":8080") or any other name listens on more.
func Loopback(listeners ...string) bool {
	for _, l := range listeners {
		if l == "" || strings.HasPrefix(l, "unix:") {
			continue
		}
		if host, _, err := net.SplitHostPort(l); err != nil || !loopbackHost(host, false) {
			return false
		}
	}
	return true
}

// loopbackHost reports whether host is localhost or a loopback address,
// or with names a name under .localhost too (RFC 6761 §6.3: browsers
// resolve them to loopback; a listener's resolver need not).
func loopbackHost(host string, names bool) bool {
	host = strings.ToLower(host)
	if host == "localhost" || names && strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoopbackURLs reports whether every URL of urls names a host only this
// machine's browser reaches: localhost, a name under .localhost (RFC 6761
// §6.3; browsers resolve them to loopback) or a loopback address. "" (a
// setting left out) is skipped.
func LoopbackURLs(urls ...string) bool {
	for _, raw := range urls {
		if raw == "" {
			continue // a setting left out
		}
		if u, err := url.Parse(raw); err != nil || u.Host == "" || !loopbackHost(u.Hostname(), true) {
			return false
		}
	}
	return true
}

// published returns the 1-based position of the first key of hexKeys that
// is a published test key, or 0.
func published(hexKeys []string) int {
	return 1 + slices.IndexFunc(hexKeys, func(k string) bool {
		return slices.ContainsFunc(PublishedTestKeys, func(p string) bool { return strings.EqualFold(k, p) })
	})
}

// Keyring builds a key ring from the one source given: list (the setting's
// value; nil when left out), the file named by *file (nil when left out; one
// key per line, blank lines and lines starting with # skipped), or the
// environment variable read with getenv (nil means an empty environment;
// keys comma-separated). Keys are 64 hex characters each, the sealing key
// first. A key of PublishedTestKeys is refused unless every address of
// listeners (the daemon's listen and metrics_listen) is loopback and every
// URL of urls (the browser origins and redirect URIs) names a loopback host:
// loopback listeners alone do not make a development machine, since NGINX
// on a public address sits in front of them in production.
//
// Errors name the source and, through crypto, the key's position; never key
// material.
func (s Source) Keyring(list []string, file *string, getenv func(string) string, listeners, urls []string) (*crypto.Keyring, error) {
	source, env, err := s.pick(list != nil, file != nil, getenv, "keys")
	if err != nil {
		return nil, err
	}
	var hexKeys []string
	switch source {
	case s.Setting:
		hexKeys = list
	case s.FileSetting:
		data, err := s.readFile(*file)
		if err != nil {
			return nil, err
		}
		for line := range strings.SplitSeq(data, "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				hexKeys = append(hexKeys, line)
			}
		}
	default:
		for k := range strings.SplitSeq(env, ",") {
			hexKeys = append(hexKeys, strings.TrimSpace(k))
		}
	}
	keys, err := crypto.ParseKeyring(hexKeys...)
	if err != nil {
		return nil, Errorf(source, "%w", err)
	}
	if i := published(hexKeys); i > 0 && !(Loopback(listeners...) && LoopbackURLs(urls...)) {
		return nil, Errorf(source, "key %d is a published test key, which anyone can use to read and forge cookies; "+
			"it is allowed only on a development machine, with every listener on loopback (127.0.0.1, ::1, localhost "+
			"or unix:) and every browser origin and redirect URI on localhost, *.localhost or a loopback address: "+
			"make a key with `thctl keygen`", i)
	}
	return keys, nil
}

// Secret returns the secret from the one source given: *value (nil when the
// setting was left out), the file named by *file (nil when left out; one
// final line ending is dropped), or the environment variable read with
// getenv (nil means an empty environment). An empty secret is an error.
// Errors never quote the secret.
func (s Source) Secret(value, file *string, getenv func(string) string) (string, error) {
	source, env, err := s.pick(value != nil, file != nil, getenv, "secret")
	if err != nil {
		return "", err
	}
	switch source {
	case s.Setting:
		if *value == "" {
			return "", Errorf(s.Setting, "must not be empty")
		}
		return *value, nil
	case s.FileSetting:
		return s.readSecret(*file, "secret")
	default:
		return env, nil
	}
}
