// Package metricstest reads the daemons' metrics pages (the Prometheus text
// format) for tests and for the bench/run and loadtest/run harnesses: the
// daemons only write the page, and nothing in production parses it.
package metricstest

import (
	"errors"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Scrape returns the page on the metrics listener at addr (host:port).
func Scrape(addr string) (string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New("metricstest: /metrics answered " + resp.Status)
	}
	return string(b), err
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

// Names returns the series names on page, labels left out: a histogram h
// gives h_bucket, h_sum and h_count.
func Names(page string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.Lines(page) {
		if line == "" || line[0] == '#' || line == "\n" {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		names[name] = true
	}
	return names
}

// Documented returns the series names starting with prefix (as
// "oauth_proxy_") that the Markdown files mention, sorted, each once.
func Documented(prefix string, files ...string) ([]string, error) {
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

// Missing returns the names that page has no series of; a histogram's name
// is there when its _bucket series are.
func Missing(page string, names ...string) []string {
	have := Names(page)
	var missing []string
	for _, n := range names {
		if !have[n] && !have[n+"_bucket"] {
			missing = append(missing, n)
		}
	}
	return missing
}
