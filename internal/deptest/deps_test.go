package deptest

import (
	"testing"
)

// The checker needs only the standard library (and the go command).
func TestDependencies(t *testing.T) {
	DepChecker{
		Allowed: []string{Module + "/internal/deptest"},
	}.Check(t)
}
