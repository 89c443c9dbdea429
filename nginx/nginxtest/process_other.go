//go:build !unix

package nginxtest

import "os/exec"

// ownProcessGroup does nothing here: NGINX and its caller see the same Ctrl-C.
func ownProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the master; its workers notice and exit.
func killProcessGroup(cmd *exec.Cmd) { cmd.Process.Kill() }
