package main

import (
	"bytes"
	"os"
	"testing"
)

func TestCoordinatorReleasesWhenAllArrived(t *testing.T) {
	var a, b bytes.Buffer
	c := &coordinator{o: &options{}}
	c.add(&a)
	c.add(&b)
	c.arrived()
	c.start()
	if a.Len() != 0 || b.Len() != 0 {
		t.Fatalf("released after one of two workers: %q %q", a.String(), b.String())
	}
	c.arrived()
	if a.String() != "-1\n" || b.String() != "-1\n" {
		t.Fatalf("after both arrived: %q %q, want -1 each", a.String(), b.String())
	}
	// A worker that ends does not hold the other at the next point.
	c.arrived()
	c.left(&b)
	if a.String() != "-1\n-1\n" || b.String() != "-1\n" {
		t.Fatalf("after one left: %q %q", a.String(), b.String())
	}
}

func TestServerCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if ms := serverCPU(os.Getpid()); ms < 0 {
		t.Fatalf("serverCPU(self) = %d", ms)
	}
	if ms := serverCPU(0); ms != -1 {
		t.Fatalf("serverCPU(0) = %d, want -1", ms)
	}
}
