package main

import (
	"testing"
)

// FuzzParseStat checks that no /proc/PID/stat content makes the parser panic or report a
// negative time.
func FuzzParseStat(f *testing.F) {
	f.Add([]byte("4242 (mcpguard) S 4000 4242 4000 0 -1 4194560 1017 0 0 0 150 25 0 0 20 0 9 0 12345 1300000000 4000"))
	f.Add([]byte("7 (a) b (c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0"))
	f.Add([]byte("7 ()) R 1 7 7 0 -1 0 0 0 0 0 99999999999999999999 4"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cpu, _, err := parseStat(b)
		if err == nil && cpu < 0 {
			t.Fatalf("parseStat(%q) = %v, a negative time", b, cpu)
		}
	})
}

// FuzzParseStatus checks that no /proc/PID/status content makes the parser panic or report a
// negative size.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Name:\tmcpguard\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n"))
	f.Add([]byte("VmRSS: 1 kB\nVmRSS: 2 kB\n"))
	f.Add([]byte("VmHWM:\t-1 kB\nVmRSS:\t1 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rss, hwm, err := parseStatus(b)
		if err == nil && (rss < 0 || hwm < 0) {
			t.Fatalf("parseStatus(%q) = %d, %d: a negative size", b, rss, hwm)
		}
	})
}
