// Package metrics is a small Prometheus registry for the token handler's
// binaries: counters and histograms whose updates are single atomic
// operations that allocate nothing, rendered in the Prometheus text format
// (version 0.0.4) on demand.
package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Counter only goes up. It is safe for concurrent use and must not be copied.
type Counter struct{ v atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value returns the current count.
func (c *Counter) Value() uint64 { return c.v.Load() }

// DefaultLatencyBuckets are upper bounds in seconds for request latencies,
// from 100 µs (the proxy's own work) to 10 s (a slow upstream).
var DefaultLatencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// Histogram counts observations into fixed buckets. It is safe for
// concurrent use and must not be copied.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sumNs  atomic.Uint64
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(h.bounds, s) // first bound ≥ s
	h.counts[i].Add(1)
	if d > 0 {
		h.sumNs.Add(uint64(d))
	}
}

// Registry holds metric families in registration order. It is safe for
// concurrent use; registering takes a lock, updating a metric does not.
type Registry struct {
	mu       sync.Mutex
	families []*family
	byName   map[string]*family
}

type family struct {
	name, help, typ string
	series          map[string]*series // by rendered label set
}

type series struct {
	labels string // `{a="b",c="d"}` or ""
	c      *Counter
	h      *Histogram
	gauge  func() float64
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{byName: map[string]*family{}} }

// Counter returns the counter with this name and labels (alternating names
// and values), creating it on first use. Look counters up once, outside the
// hot path: this call allocates.
func (r *Registry) Counter(name, help string, labels ...string) *Counter {
	s := r.series(name, help, "counter", labels, func(s *series) { s.c = new(Counter) })
	return s.c
}

// Histogram returns the histogram with this name and labels, creating it on
// first use with the given bucket bounds (seconds, ascending).
func (r *Registry) Histogram(name, help string, bounds []float64, labels ...string) *Histogram {
	s := r.series(name, help, "histogram", labels, func(s *series) {
		s.h = &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	})
	return s.h
}

// GaugeFunc registers a gauge whose value fn returns at scrape time. A second
// registration with the same name and labels replaces fn.
func (r *Registry) GaugeFunc(name, help string, fn func() float64, labels ...string) {
	s := r.series(name, help, "gauge", labels, func(*series) {})
	r.mu.Lock()
	s.gauge = fn
	r.mu.Unlock()
}

func (r *Registry) series(name, help, typ string, labels []string, init func(*series)) *series {
	if len(labels)%2 != 0 {
		panic("metrics: internal error: odd label list for " + name)
	}
	key := renderLabels(labels)
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.byName[name]
	if f == nil {
		f = &family{name: name, help: help, typ: typ, series: map[string]*series{}}
		r.byName[name] = f
		r.families = append(r.families, f)
	}
	if f.typ != typ {
		panic("metrics: internal error: " + name + " registered as " + f.typ + " and " + typ)
	}
	s := f.series[key]
	if s == nil {
		s = &series{labels: key}
		init(s)
		f.series[key] = s
	}
	return s
}

func renderLabels(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(escape(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escape(v string) string { return labelEscaper.Replace(v) }

// WritePrometheus writes every metric in the Prometheus text format, families
// in registration order and series sorted by labels.
func (r *Registry) WritePrometheus(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, f := range r.families {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := f.series[k]
			switch {
			case s.c != nil:
				fmt.Fprintf(&b, "%s%s %d\n", f.name, s.labels, s.c.Value())
			case s.h != nil:
				writeHistogram(&b, f.name, s.labels, s.h)
			case s.gauge != nil:
				fmt.Fprintf(&b, "%s%s %s\n", f.name, s.labels, formatFloat(s.gauge()))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Sample returns the value of series in text, a scrape in the Prometheus
// text format: series is a name with its labels as they are written
// (`name` or `name{k="v"}`). It reports false when text has no such line.
func Sample(text, series string) (string, bool) {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func writeHistogram(b *strings.Builder, name, labels string, h *Histogram) {
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		le := "+Inf"
		if i < len(h.bounds) {
			le = formatFloat(h.bounds[i])
		}
		fmt.Fprintf(b, "%s_bucket%s %d\n", name, withLabel(labels, "le", le), cum)
	}
	fmt.Fprintf(b, "%s_sum%s %s\n", name, labels, formatFloat(float64(h.sumNs.Load())/1e9))
	fmt.Fprintf(b, "%s_count%s %d\n", name, labels, cum)
}

func withLabel(labels, k, v string) string {
	extra := k + `="` + v + `"`
	if labels == "" {
		return "{" + extra + "}"
	}
	return labels[:len(labels)-1] + "," + extra + "}"
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
