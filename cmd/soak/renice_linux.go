package main

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// renice lowers the priority of every thread of this process (threads made
// later inherit it) to nice 10: the generator then takes the CPU time the
// server and the probe leave, as an attacker's own machines would. Raising
// one's nice value needs no privilege.
func renice() {
	eachThread(func(tid int) { unix.Setpriority(unix.PRIO_PROCESS, tid, 10) })
}

// pinTo moves every thread of this process (threads made later inherit it)
// to cpu, when cpu >= 0.
func pinTo(cpu int) {
	if cpu < 0 {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	eachThread(func(tid int) { unix.SchedSetaffinity(tid, &set) })
}

func eachThread(f func(tid int)) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			f(tid)
		}
	}
}
