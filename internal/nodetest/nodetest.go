// Package nodetest runs Node.js scripts in tests: the cookie formats' second
// implementations (crypto and session interop tests) and the certified
// OpenID Provider. Only tests import it.
package nodetest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// Node returns the path of the node binary. Without one it skips the test
// locally and fails it when the environment variable CI is set: CI must run
// every test.
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		bintest.Missing(t, "node not found: apt-get install -y nodejs")
	}
	return node
}

// RunJSON runs `node script` in the test's directory with in, as JSON, on
// its standard input and decodes its standard output, JSON, into out. Its
// standard error goes to the test's.
func RunJSON(t testing.TB, script string, in, out any) {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Node(t), script)
	cmd.Stdin = bytes.NewReader(data)
	cmd.Stderr = os.Stderr
	answer, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		t.Fatalf("node %s's answer: %v", script, err)
	}
}
