package harness

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
)

// TestChildren: a process this test starts is among its children, and
// Stat reads the CPU-time fields bench/run sums (utime 11, stime 12).
func TestChildren(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if kids := Children(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("Children = %v, want %d among them", kids, cmd.Process.Pid)
	}
	if f := Stat(os.Getpid()); len(f) < 13 {
		t.Errorf("Stat = %q, want at least 13 fields", f)
	}
	if f := Stat(cmd.Process.Pid); len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
		t.Errorf("the child's Stat = %q, want its parent %d in field 1", f, os.Getpid())
	}
}
