//go:build unix

package mqttgw

import "syscall"

// openFileLimit returns the process's soft limit of open files
// (RLIMIT_NOFILE), or 0 when it cannot be read. The Go runtime raises the
// soft limit to the hard one at start-up, so this is what the process may
// really open.
func openFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0
	}
	return uint64(r.Cur)
}
