package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// What the harness reads about processes from /proc: resident memory, CPU
// time, and writes.

// rssBytes reads a process's resident set size from /proc.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc: 100 on every
// Linux build the harness targets.
const clockTicks = 100

// cpuMeter measures, over an interval, the CPU time of named processes
// and of the machine as a whole, so that a report can show where the CPU
// went, and whether something else on the machine took its share.
type cpuMeter struct {
	start time.Time
	busy  uint64 // machine-wide busy ticks at start
	pids  map[string]int
	ticks map[string]uint64
}

func startCPU(pids map[string]int) *cpuMeter {
	m := &cpuMeter{start: time.Now(), pids: pids, ticks: make(map[string]uint64)}
	m.busy, _ = machineBusyTicks()
	for name, pid := range pids {
		m.ticks[name], _ = procTicks(pid)
	}
	return m
}

// stop returns the CPU used since start, in cores (1.0 = one CPU busy the
// whole time), by each named process, and by everything else as "other".
func (m *cpuMeter) stop() map[string]float64 {
	secs := time.Since(m.start).Seconds()
	busy, err := machineBusyTicks()
	if err != nil || secs <= 0 {
		return nil
	}
	out := make(map[string]float64)
	var ours uint64
	for name, pid := range m.pids {
		t, err := procTicks(pid)
		if err != nil {
			continue
		}
		d := t - m.ticks[name]
		ours += d
		out[name] = float64(d) / clockTicks / secs
	}
	if busy >= m.busy+ours {
		out["other"] = float64(busy-m.busy-ours) / clockTicks / secs
	}
	return out
}

// machineBusyTicks sums the non-idle CPU times of the first line of
// /proc/stat (user, nice, system, irq, softirq, steal).
func machineBusyTicks() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: unexpected first line")
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		busy += v
	}
	return busy, nil
}

// procTicks returns a process's user and system CPU time (all threads).
func procTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: start after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc/pid/stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// Fields 14 and 15 of the line (utime, stime) are 12 and 13 after it.
	if len(f) < 13 {
		return 0, errors.New("/proc/pid/stat: too few fields")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// ioCounters are a process's write counters from /proc/PID/io.
type ioCounters struct {
	wchar, syscw, writeBytes uint64
}

func readIO(pid int) (ioCounters, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "io"))
	if err != nil {
		return ioCounters{}, err
	}
	var c ioCounters
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ": ")
		n, _ := strconv.ParseUint(v, 10, 64)
		switch k {
		case "wchar":
			c.wchar = n
		case "syscw":
			c.syscw = n
		case "write_bytes":
			c.writeBytes = n
		}
	}
	return c, nil
}

// writesPer returns what the process wrote between a and b per request:
// bytes through write calls (sockets and files), write calls, and bytes
// that went to the block device.
func writesPer(a, b ioCounters, requests uint64) map[string]float64 {
	if requests == 0 {
		return nil
	}
	n := float64(requests)
	return map[string]float64{
		"write_call_bytes":  float64(b.wchar-a.wchar) / n,
		"write_calls":       float64(b.syscw-a.syscw) / n,
		"block_write_bytes": float64(b.writeBytes-a.writeBytes) / n,
	}
}
