package harness

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// process is a server the harness started, with its output in a log file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
}

// startProcess starts cmd with stdout and stderr going to logPath.
func startProcess(cmd *exec.Cmd, logPath string) (*process, error) {
	return startProcessOut(cmd, logPath, nil)
}

// startProcessOut starts cmd with stderr going to logPath, and stdout too
// unless stdout is not nil.
func startProcessOut(cmd *exec.Cmd, logPath string, stdout io.Writer) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if stdout != nil {
		cmd.Stdout = stdout
	}
	// Its own process group, so a stop reaches the JVM's or go's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Fprintf(os.Stderr, "harness: starting %s (log %s)\n", strings.Join(cmd.Args, " "), logPath)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM, waits up to grace, then SIGKILLs the process group.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("exited before it was stopped: %v", p.waitErr)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		return fmt.Errorf("did not stop within %v of SIGTERM: %w", grace, ErrKilled)
	}
}

// kill SIGKILLs the process group and waits up to wait for the exit; a
// process that had already exited is an error.
func (p *process) kill(wait time.Duration) error {
	select {
	case <-p.exited:
		return fmt.Errorf("exited before it was killed: %v", p.waitErr)
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.exited:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("still running %v after SIGKILL", wait)
	}
}

// ErrKilled is the error of a stop that had to SIGKILL the process.
var ErrKilled = errors.New("killed")

// running reports an error if the process has exited.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("exited: %v\n%s", p.waitErr, p.logTail())
	default:
		return nil
	}
}

// logTail returns the last 25 lines of the process's log and its path.
func (p *process) logTail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 25 {
		lines = lines[len(lines)-25:]
	}
	return strings.Join(lines, "\n") + "\n(log: " + p.logPath + ")"
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// apiVersions sends one ApiVersions v0 request, written by hand so that
// readiness does not depend on a client under test, and checks that the
// answer carries no error and lists at least one API.
func apiVersions(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	const corrID = 7
	clientID := "compat-harness"
	var req bytes.Buffer
	body := 2 + 2 + 4 + 2 + len(clientID) // key, version, correlation ID, client ID
	_ = binary.Write(&req, binary.BigEndian, int32(body))
	_ = binary.Write(&req, binary.BigEndian, int16(18)) // ApiVersions
	_ = binary.Write(&req, binary.BigEndian, int16(0))
	_ = binary.Write(&req, binary.BigEndian, int32(corrID))
	_ = binary.Write(&req, binary.BigEndian, int16(len(clientID)))
	req.WriteString(clientID)
	if _, err := c.Write(req.Bytes()); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size < 10 || size > 1<<20 {
		return fmt.Errorf("ApiVersions response of %d bytes", size)
	}
	resp := make([]byte, size)
	if _, err := io.ReadFull(c, resp); err != nil {
		return err
	}
	if got := binary.BigEndian.Uint32(resp); got != corrID {
		return fmt.Errorf("correlation ID %d, want %d", got, corrID)
	}
	if code := int16(binary.BigEndian.Uint16(resp[4:])); code != 0 {
		return fmt.Errorf("ApiVersions error code %d", code)
	}
	if n := int32(binary.BigEndian.Uint32(resp[6:])); n <= 0 {
		return errors.New("ApiVersions lists no API")
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for a
// server a test starts itself (e.g. Kafka Connect's REST listener).
func FreePort() (int, error) { return freePort() }
