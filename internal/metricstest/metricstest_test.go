package metricstest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const page = `# HELP th_requests_total
# TYPE th_requests_total counter
th_requests_total{route="/api/",status="200"} 3
th_requests_total{route="/api/",status="401"} 1
# HELP th_latency_seconds
# TYPE th_latency_seconds histogram
th_latency_seconds_bucket{le="0.001"} 1
th_latency_seconds_bucket{le="+Inf"} 3
th_latency_seconds_sum 1.0055
th_latency_seconds_count 3
th_up 1
`

func TestSample(t *testing.T) {
	for _, tt := range []struct {
		name, series, want string
	}{
		{name: "labelled", series: `th_requests_total{route="/api/",status="401"}`, want: "1"},
		{name: "unlabelled", series: "th_latency_seconds_count", want: "3"},
		{name: "a family is not a series", series: "th_latency_seconds"},
		{name: "a labelled series needs its labels", series: "th_requests_total"},
		{name: "missing", series: "th_missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, ok := Sample(page, tt.series); got != tt.want || ok != (tt.want != "") {
				t.Errorf("Sample(%s) = %q, %v; want %q", tt.series, got, ok, tt.want)
			}
		})
	}
	if v, ok := Value(page, "th_latency_seconds_sum"); !ok || v != 1.0055 {
		t.Errorf("Value(th_latency_seconds_sum) = %v, %v; want 1.0055", v, ok)
	}
}

func TestMissing(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "doc.md")
	os.WriteFile(doc, []byte("The series: `th_requests_total{route}`, `th_latency_seconds{route}`, `th_up`, `th_gone`; th_up again.\n"), 0o600)
	names, err := documented("th_", doc)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"th_gone", "th_latency_seconds", "th_requests_total", "th_up"}; !slices.Equal(names, want) {
		t.Fatalf("documented = %q, want %q", names, want)
	}
	if got := missing(page, names...); !slices.Equal(got, []string{"th_gone"}) {
		t.Errorf("missing = %q, want [th_gone]", got)
	}
}
