// Package version is what the binaries print as their version (-version,
// thctl version): the stamp make dist links in, else the module's version.
package version

import "runtime/debug"

// stamp is set at link time by make dist:
//
//	-ldflags "-X github.com/tokenhandler/tokenhandler/internal/version.stamp=$(git describe --tags --always --dirty)"
var stamp string

// String is the stamped version; else the main module's version (go
// install module@version, or the VCS stamp of a build in a checkout), or
// "(devel)".
func String() string {
	if stamp != "" {
		return stamp
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
