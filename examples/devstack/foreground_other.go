//go:build !linux

package main

import "io"

// foreground does nothing here: the stack stops cleanly on Ctrl-C all the
// same, but make may report the interrupt (foreground_linux.go says why).
func foreground(io.Writer) (restore func()) { return func() {} }
