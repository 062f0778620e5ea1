// Command parkpong measures the cost of a goroutine park, the event lockprof's Go
// probes fire on: two goroutines hand a token back and forth over unbuffered
// channels on one P (GOMAXPROCS=1), so every round trip is two parks (`gopark`) and
// two wake-ups (`ready`) and nothing else — the Go counterpart of futex-pingpong. The
// overhead benchmark runs it with lockprof attached and not, and reads the round trip
// in CPU time (user + system, which includes the uprobes' traps and BPF programs): on
// a shared machine the wall time mostly measures the other work.
//
// Usage: parkpong [-seconds N] [-wait]
//
// With -wait it prints "ready" and starts after a line on stdin (so a profiler can
// attach first). It prints one JSON line: {"parkpong":"chan","round_trips":…,
// "rtt_ns":…,"cpu_ns_per_rtt":…,"seconds":…}.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// cpuNs is the CPU time (user + system) this process has used so far.
func cpuNs() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "parkpong: getrusage:", err)
		os.Exit(1)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func main() {
	seconds := flag.Float64("seconds", 2, "how long to hand the token back and forth")
	wait := flag.Bool("wait", false, "print \"ready\" and start after a line on stdin")
	flag.Parse()
	if *seconds <= 0 || *seconds > 3600 {
		fmt.Fprintln(os.Stderr, "parkpong: -seconds must be in (0, 3600]")
		os.Exit(2)
	}
	// One P: a handoff parks the sender and readies the receiver, never spinning
	// on another CPU.
	runtime.GOMAXPROCS(1)
	if *wait {
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			fmt.Fprintln(os.Stderr, "parkpong: stdin closed before the start line")
			os.Exit(1)
		}
	}
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
		close(pong)
	}()
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	start, cpu0 := time.Now(), cpuNs()
	n := 0
	for {
		ping <- n
		<-pong
		n++
		// Reading the clock every round trip would weigh on what is measured.
		if n%1024 == 0 && time.Now().After(deadline) {
			break
		}
	}
	elapsed, cpu := time.Since(start), cpuNs()-cpu0
	close(ping)
	out, _ := json.Marshal(map[string]interface{}{
		"parkpong": "chan", "round_trips": n,
		"rtt_ns":         float64(elapsed.Nanoseconds()) / float64(n),
		"cpu_ns_per_rtt": float64(cpu) / float64(n), "seconds": elapsed.Seconds(),
	})
	fmt.Println(string(out))
}
