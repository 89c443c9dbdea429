//go:build unix

package nginxtest

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup puts NGINX in a process group of its own: a terminal's
// Ctrl-C does not reach it, and killProcessGroup reaches its workers too.
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup kills the master and its workers.
func killProcessGroup(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
}
