package main

import (
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// TestRunRefusesBadArguments: a bad command line stops the run before
// anything starts, with exit status 2 (1 when k6 is missing) and a message
// that says what to do.
func TestRunRefusesBadArguments(t *testing.T) {
	bintest.Main(run).RunCases(t, []bintest.Case{
		{Name: "unknown script", Args: []string{"-script", "stress"}, Code: 2, Stderr: []string{`-script "stress": want smoke, load, spike, soak or login`}, Quiet: true},
		{Name: "unknown flag", Args: []string{"-bogus"}, Code: 2, Stderr: []string{"flag provided but not defined: -bogus"}, Quiet: true},
		{Name: "bad duration", Args: []string{"-duration", "ten"}, Code: 2, Stderr: []string{`invalid value "ten" for flag -duration`}, Quiet: true},
		{Name: "no k6", Args: []string{"-k6", "/nonexistent/k6"}, Code: 1, Stderr: []string{"k6 not found at /nonexistent/k6: run `make loadtest`"}, Quiet: true},
	})
}

// TestLimit: the whole run is bounded by the script's duration plus three
// minutes for start-up and drain, the soak's default ten minutes included.
func TestLimit(t *testing.T) {
	tests := []struct {
		o    options
		want time.Duration
	}{
		{options{script: "smoke"}, 3 * time.Minute},
		{options{script: "load", duration: 2 * time.Minute}, 5 * time.Minute},
		{options{script: "soak"}, 13 * time.Minute},
		{options{script: "soak", duration: time.Minute}, 4 * time.Minute},
	}
	for _, tc := range tests {
		if got := tc.o.limit(); got != tc.want {
			t.Errorf("%+v: limit %v, want %v", tc.o, got, tc.want)
		}
	}
}
