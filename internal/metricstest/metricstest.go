// Package metricstest reads the daemons' metrics pages (the Prometheus text
// format) for tests and for the bench/run and loadtest/run harnesses: the
// daemons only write the page, and nothing in production parses it.
package metricstest

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenhandler/tokenhandler/internal/bintest"
)

// Scrape returns the page on the metrics listener at addr (host:port).
func Scrape(addr string) (string, error) {
	code, page, err := bintest.Get(&http.Client{Timeout: 5 * time.Second}, "http://"+addr+"/metrics")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("metricstest: /metrics answered %d %s", code, http.StatusText(code))
	}
	return page, err
}

// Sample returns the value of series in page: series is a name with its
// labels as the page writes them (`name` or `name{k="v"}`). It reports false
// when page has no such line.
func Sample(page, series string) (string, bool) {
	for line := range strings.Lines(page) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// Value is Sample as a number; it reports false when the series is missing
// or its value is not a number.
func Value(page, series string) (float64, bool) {
	v, ok := Sample(page, series)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	return f, err == nil
}

// WantDocumented scrapes the metrics listener at addr and fails t unless
// the page has the Go runtime's and the process's series (go_goroutines,
// go_memstats_alloc_bytes, process_resident_memory_bytes,
// process_cpu_seconds_total) and every series starting with prefix (as
// "oauth_proxy_") that contract.md and operations.md in the folder docs name,
// but those in except.
func WantDocumented(t testing.TB, addr, docs, prefix string, except ...string) {
	t.Helper()
	page, err := Scrape(addr)
	if err != nil {
		t.Fatal(err)
	}
	names, err := documented(prefix, filepath.Join(docs, "contract.md"), filepath.Join(docs, "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 5 {
		t.Fatalf("the docs name %d series starting with %s (%q): the pattern no longer finds them", len(names), prefix, names)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(except, n) })
	names = append(names, "go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total")
	if lack := missing(page, names...); len(lack) > 0 {
		t.Errorf("/metrics lacks %q:\n%s", lack, page)
	}
}

// documented returns the series names starting with prefix that the
// Markdown files mention, sorted, each once.
func documented(prefix string, files ...string) ([]string, error) {
	re := regexp.MustCompile(`\b` + regexp.QuoteMeta(prefix) + `[a-z0-9_]+`)
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		names = append(names, re.FindAllString(string(b), -1)...)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// missing returns the names that page has no series of; a histogram's name
// is there when its _bucket series are.
func missing(page string, names ...string) []string {
	have := map[string]bool{} // the series names, labels left out
	for line := range strings.Lines(page) {
		if line != "\n" && line[0] != '#' {
			name, _, _ := strings.Cut(line, " ")
			name, _, _ = strings.Cut(name, "{")
			have[name] = true
		}
	}
	var missing []string
	for _, n := range names {
		if !have[n] && !have[n+"_bucket"] {
			missing = append(missing, n)
		}
	}
	return missing
}
