package deptest

import (
	"testing"
)

// The checker needs only the standard library (and the go command).
func TestDependencies(t *testing.T) { Stdlib.Check(t) }
