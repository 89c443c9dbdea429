//go:build !idlecompare

package daemon

// reduceIdleMemory: see idlecompare.go; release builds leave fasthttp's
// buffers as [HTTP.Server] sets them.
const reduceIdleMemory = false
