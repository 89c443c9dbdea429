package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// foreground puts devstack in a process group of its own and makes that
// the terminal's foreground group, when its stdin is that terminal and it
// shares the foreground group with its parent (make, or go run); it
// returns the function that gives the terminal back. Otherwise (stdin not
// a terminal, as for a test or script that starts devstack; in the
// background; started by the shell itself) it does nothing.
//
// Why: Ctrl-C signals the terminal's whole foreground group. Under
// `make run` that includes make, and GNU make, interrupted, waits for its
// child and then kills itself with the same signal: the shell sees 130
// however cleanly the stack stopped (and `go run` exits 1 when its child
// got a signal, which make reports as "*** Error 1"). Alone in the
// foreground, devstack gets Ctrl-C, stops every part and exits 0, and make
// and go run exit 0 with it.
//
// While devstack holds the terminal, Ctrl-Z does not stop it (it would
// stop devstack but not make, and leave the shell waiting for make): it
// writes to w that Ctrl-C is the way out.
func foreground(w io.Writer) (restore func()) {
	nothing := func() {}
	const fd = 0 // stdin: a user at the terminal, not a program that started devstack
	parent := syscall.Getpgrp()
	fg, err := unix.IoctlGetUint32(fd, unix.TIOCGPGRP) // tcgetpgrp(3)
	if err != nil || int(fg) != parent || parent == os.Getpid() {
		return nothing
	}
	// tcsetpgrp from what is, after Setpgid, a background group raises
	// SIGTTOU, which would stop devstack.
	signal.Ignore(syscall.SIGTTOU)
	if err := syscall.Setpgid(0, 0); err != nil {
		signal.Reset(syscall.SIGTTOU)
		return nothing
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, os.Getpid()); err != nil { // tcsetpgrp(3)
		syscall.Setpgid(0, parent)
		signal.Reset(syscall.SIGTTOU)
		return nothing
	}
	tstp := make(chan os.Signal, 1)
	signal.Notify(tstp, syscall.SIGTSTP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-tstp:
				fmt.Fprintln(w, "devstack: Ctrl-Z does not suspend the stack; Ctrl-C stops it")
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(tstp)
		close(done)
		unix.IoctlSetPointerInt(fd, unix.TIOCSPGRP, parent)
		signal.Reset(syscall.SIGTTOU)
	}
}
