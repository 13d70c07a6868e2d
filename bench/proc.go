package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100 on every Linux
// architecture Go supports).
const clockTick = 10 * time.Millisecond

// procSample is what /proc says about one process at one moment.
type procSample struct {
	CPU    time.Duration // user + system time since the process started
	RSS    int64         // resident set size now, bytes (VmRSS)
	PeakRS int64         // peak resident set size since the process started, bytes (VmHWM)
}

// readProc samples process pid.
func readProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, err
	}
	cpu, _, err := parseStat(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, err
	}
	rss, hwm, err := parseStatus(status)
	if err != nil {
		return procSample{}, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return procSample{CPU: cpu, RSS: rss, PeakRS: hwm}, nil
}

// parseStat reads utime + stime and the parent pid from the contents of /proc/PID/stat. The
// command name (field 2) is in parentheses and may itself contain spaces and parentheses, so
// fields are counted from the last ')'.
func parseStat(b []byte) (cpu time.Duration, ppid int, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("no command name")
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("only %d fields after the command name", len(f))
	}
	ppid, err = strconv.Atoi(string(f[1]))
	if err != nil {
		return 0, 0, fmt.Errorf("ppid: %w", err)
	}
	utime, err := strconv.ParseInt(string(f[11]), 10, 64)
	if err != nil || utime < 0 {
		return 0, 0, fmt.Errorf("utime %q", f[11])
	}
	stime, err := strconv.ParseInt(string(f[12]), 10, 64)
	if err != nil || stime < 0 {
		return 0, 0, fmt.Errorf("stime %q", f[12])
	}
	const maxTicks = 1 << 39 // 174 years of CPU; keeps ticks × 10 ms within a Duration
	if utime > maxTicks || stime > maxTicks || utime+stime > maxTicks {
		return 0, 0, fmt.Errorf("CPU time out of range: %d ticks", utime+stime)
	}
	return time.Duration(utime+stime) * clockTick, ppid, nil
}

// parseStatus reads VmRSS and VmHWM (in kB) from the contents of /proc/PID/status.
func parseStatus(b []byte) (rss, hwm int64, err error) {
	found := 0
	for line := range bytes.SplitSeq(b, []byte{'\n'}) {
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[2]) != "kB" {
			return 0, 0, fmt.Errorf("unexpected line %.80q", line)
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, 0, fmt.Errorf("unexpected size in %.80q", line)
		}
		*dst = kb << 10
		found++
	}
	if found != 2 {
		return 0, 0, errors.New("VmRSS or VmHWM missing")
	}
	return rss, hwm, nil
}

// childPIDs lists the processes whose parent is pid (a stdio upstream of the gateway).
func childPIDs(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		if _, ppid, err := parseStat(b); err == nil && ppid == pid {
			if n, err := strconv.Atoi(filepath.Base(filepath.Dir(d))); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}
