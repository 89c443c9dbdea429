//go:build !unix

package main

import "os/exec"

// ownProcessGroup does nothing here: NGINX and the stack see the same Ctrl-C.
func ownProcessGroup(*exec.Cmd) {}
