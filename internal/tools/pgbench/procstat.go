package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports (sysconf is not reachable without cgo).
const clockTicks = 100

// procStat is what the harness reads from one /proc/<pid>/stat line.
type procStat struct {
	pid, ppid int
	// cpu is utime+stime+cutime+cstime: the process's own CPU time and that
	// of its children it has waited for.
	cpu time.Duration
}

// parseProcStat parses a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may itself hold spaces and parentheses, so the
// fields are counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	open := strings.IndexByte(line, '(')
	end := strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return procStat{}, fmt.Errorf("stat line %q: no (comm)", line)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("stat line %q: pid: %w", line, err)
	}
	// After ") ": state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime ...
	f := strings.Fields(line[end+1:])
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat line %q: %d fields after the command, want at least 15", line, len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("stat line %q: ppid: %w", line, err)
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat line %q: cpu time %q: %w", line, s, err)
		}
		ticks += n
	}
	return procStat{pid: pid, ppid: ppid, cpu: time.Duration(ticks) * time.Second / clockTicks}, nil
}

// treeCPU sums the CPU time of every stat whose process is root or one of
// its descendants. A live child's time is not yet in its parent's cutime,
// so nothing is counted twice.
func treeCPU(root int, stats []procStat) time.Duration {
	children := map[int][]int{}
	byPID := map[int]procStat{}
	for _, s := range stats {
		children[s.ppid] = append(children[s.ppid], s.pid)
		byPID[s.pid] = s
	}
	var total time.Duration
	seen := map[int]bool{}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		if s, ok := byPID[pid]; ok {
			total += s.cpu
		}
		queue = append(queue, children[pid]...)
	}
	return total
}

// processTreeCPU reads the CPU time used so far by the process pid and
// its live descendants from /proc.
func processTreeCPU(pid int) (time.Duration, error) {
	stats, err := readProcStats()
	if err != nil {
		return 0, err
	}
	return treeCPU(pid, stats), nil
}

// readProcStats reads every process's stat line from /proc. Processes that
// vanish while it reads are skipped.
func readProcStats() ([]procStat, error) {
	paths, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	stats := make([]procStat, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		s, err := parseProcStat(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, err
		}
		stats = append(stats, s)
	}
	return stats, nil
}

// serverCPU is the CPU time the servers every contender shares have used:
// the Prefect server's processes, PostgreSQL's (the postmaster and its
// backends) and moto's. Their growth over a burst is what the burst cost
// the servers, whoever caused it.
type serverCPU struct {
	prefect, postgres, moto time.Duration
}

// minus is s - o, field by field.
func (s serverCPU) minus(o serverCPU) serverCPU {
	return serverCPU{prefect: s.prefect - o.prefect, postgres: s.postgres - o.postgres, moto: s.moto - o.moto}
}

// markCPU reads /proc once for a window mark: the shared servers' CPU
// time so far and, when pid is not 0, that of process pid and its live
// descendants.
func (s *stack) markCPU(pid int) windowMark {
	var m windowMark
	stats, err := readProcStats()
	if err != nil {
		m.serversErr = err
		if pid != 0 {
			m.cpuErr = err
		}
		return m
	}
	m.servers = serverCPU{
		prefect:  treeCPU(s.srv.PID(), stats),
		postgres: treeCPU(s.srv.Postgres.PID(), stats),
		moto:     treeCPU(s.moto.PID(), stats),
	}
	if pid != 0 {
		m.cpu = treeCPU(pid, stats)
	}
	return m
}

// usage is what an exited process used, from wait4's rusage: its CPU time
// and that of the descendants it waited for, and the largest resident set
// of it or them.
type usage struct {
	cpu     time.Duration
	peakRSS int64 // bytes
}

// exitUsage reads the usage of an exited process.
func exitUsage(ps *os.ProcessState) usage {
	if ps == nil {
		return usage{}
	}
	u := usage{cpu: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.peakRSS = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return u
}
