package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestRunRefusesBadArguments: a bad command line stops the run before
// anything starts, with exit status 2 (1 when k6 is missing) and a message
// that says what to do.
func TestRunRefusesBadArguments(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown script", []string{"-script", "stress"}, 2, `-script "stress": want smoke, load, spike, soak or login`},
		{"unknown flag", []string{"-bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad duration", []string{"-duration", "ten"}, 2, `invalid value "ten" for flag -duration`},
		{"no k6", []string{"-k6", "/nonexistent/k6"}, 1, "k6 not found at /nonexistent/k6: run `make loadtest`"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
				t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.msg)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing: no run started", stdout.String())
			}
		})
	}
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
