//go:build !linux

package device

import "syscall"

func bindNoPort(network, address string, c syscall.RawConn) error { return nil }
