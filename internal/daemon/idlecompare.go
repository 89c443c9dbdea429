//go:build idlecompare

package daemon

// reduceIdleMemory is true only in the measurement build of the
// idle-connection comparison: bench/run -idle-compare builds a second
// oauth-proxy with -tags idlecompare, whose server uses fasthttp's
// ReduceMemoryUsage and a 4 KiB write buffer, the alternative to parking
// that docs/benchmarks.md measured and turned down. Release builds never
// have it.
const reduceIdleMemory = true
