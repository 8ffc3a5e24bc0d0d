package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// applyTimerSlack gives every thread of this process a timer slack of d:
// the kernel may run a thread's timed sleep up to d late, so that it can
// serve several wakeups at once.
//
// Why the broker wants it: while any goroutine runs, the Go runtime's
// monitor thread (sysmon) sleeps 20 µs at a time, and each of its wakeups
// costs a context switch. With the default 50 µs slack that is one wakeup
// every ~70 µs of busy time; on a VM it was 15% of the broker's CPU.
// With 1 ms the monitor wakes about once a millisecond. Go's own timers
// (long polls, session timeouts) already fire with millisecond precision,
// so nothing the broker waits for moves by more than that.
//
// A thread inherits its slack from the thread that creates it, and the Go
// runtime starts its threads before main runs. So applyTimerSlack sets the
// slack of this thread and executes the binary again with the same
// arguments and environment: the new image's threads all descend from
// this one. The process keeps its pid. When the slack is already d
// (the re-executed process, or a parent that set it, as systemd's
// TimerSlackNSec= does) it returns nil at once; d <= 0 keeps what the
// process inherited. On success it does not return.
func applyTimerSlack(d time.Duration, args []string) error {
	if d <= 0 {
		return nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := timerSlack()
	if err != nil || cur == d {
		return err
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0); errno != 0 {
		return fmt.Errorf("set timer slack to %s: %w", d, errno)
	}
	// Exec only once the kernel reports the new value, so the next image
	// finds it and cannot loop.
	if got, err := timerSlack(); err != nil || got != d {
		return fmt.Errorf("timer slack reads %s after setting %s (%v)", got, d, err)
	}
	exe := "/proc/self/exe"
	err = syscall.Exec(exe, append([]string{os.Args[0]}, args...), os.Environ())
	return fmt.Errorf("re-execute %s to apply the timer slack: %w", exe, err)
}

// timerSlack returns the calling thread's timer slack.
func timerSlack() (time.Duration, error) {
	v, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_GET_TIMERSLACK, 0, 0)
	if errno != 0 {
		return 0, fmt.Errorf("read timer slack: %w", errno)
	}
	return time.Duration(v), nil
}
