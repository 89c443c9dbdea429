package settings

import (
	"os"
	"strings"

	"github.com/tokenhandler/tokenhandler/crypto"
)

// Source names the three places one secret may come from (SPEC §7): a
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

// readFile reads the file the FileSetting names.
func (s Source) readFile(path string) (string, error) {
	if path == "" {
		return "", Errorf(s.FileSetting, "must be a file path")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", Errorf(s.FileSetting, "%w", err)
	}
	return string(data), nil
}

// Keyring builds a key ring from the one source given: list (the setting's
// value; nil when left out), the file named by *file (nil when left out; one
// key per line, blank lines and lines starting with # skipped), or the
// environment variable read with getenv (nil means an empty environment;
// keys comma-separated). Keys are 64 hex characters each, the sealing key
// first.
//
// Errors name the source and, through crypto, the key's position; never key
// material.
func (s Source) Keyring(list []string, file *string, getenv func(string) string) (*crypto.Keyring, error) {
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
		data, err := s.readFile(*file)
		if err != nil {
			return "", err
		}
		// Editors end files with a line ending; the secret does not.
		data = strings.TrimSuffix(data, "\n")
		data = strings.TrimSuffix(data, "\r")
		if data == "" {
			return "", Errorf(s.FileSetting, "%s holds no secret: the file is empty", *file)
		}
		return data, nil
	default:
		return env, nil
	}
}
