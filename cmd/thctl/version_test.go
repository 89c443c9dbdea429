package main

import (
	"strings"
	"testing"

	"github.com/tokenhandler/tokenhandler/internal/version"
)

func TestVersion(t *testing.T) {
	if r := thctl(t, nil, "", "version"); r.code != 0 || r.stdout != "thctl "+version.String()+"\n" || r.stderr != "" {
		t.Errorf("thctl version = %+v, want exit 0 and %q", r, "thctl "+version.String()+"\n")
	}
	if r := thctl(t, nil, "", "version", "extra"); r.code != 2 || !strings.Contains(r.stderr, "version takes no arguments") {
		t.Errorf("thctl version extra = %+v, want exit 2 and a usage error", r)
	}
}
