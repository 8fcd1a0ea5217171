// Package pgtemp starts a throwaway PostgreSQL server for tests and
// benchmarks: a temporary data folder, trust authentication, a free
// loopback port and no fsync (what is measured or tested is tmcad, not the
// disk's flush). As root, the server runs as the postgres user (it refuses
// root).
package pgtemp

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// URL is its connection URL (database postgres, user postgres).
	URL  string
	base string
	cmd  *exec.Cmd
	done chan struct{}
	// command builds a server command (as the postgres user under root);
	// port is the server's.
	command func(name string, args ...string) *exec.Cmd
	port    int
}

// pgBin is where Debian's PostgreSQL 15 server binaries live.
const pgBin = "/usr/lib/postgresql/15/bin"

// FreePort returns a TCP port free on the loopback interface now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start runs initdb and postgres under a new folder in the temporary
// folder whose name starts with prefix, and returns once the server
// accepts connections (within 30 s).
func Start(prefix string) (*Server, error) {
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(pgBin, b)); err != nil {
			return nil, fmt.Errorf("PostgreSQL 15 (%s) is needed (make deps): %w", b, err)
		}
	}
	base, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, fmt.Errorf("postgres folder: %w", err)
	}
	p := &Server{base: base}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(base)
		return nil, err
	}
	if err := os.Chmod(base, 0o755); err != nil {
		return fail(fmt.Errorf("postgres folder: %w", err))
	}
	data, sock := filepath.Join(base, "data"), filepath.Join(base, "sock")
	for _, d := range []string{data, sock} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(fmt.Errorf("postgres folder: %w", err))
		}
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running PostgreSQL as root needs the postgres user (make deps): %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{data, sock} {
			if err := os.Chown(d, uid, gid); err != nil {
				return fail(fmt.Errorf("postgres folder: %w", err))
			}
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	command := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(pgBin, name), args...)
		c.Dir = base
		c.Env = []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "HOME=" + base}
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return c
	}
	if out, err := command("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	port, err := FreePort()
	if err != nil {
		return fail(err)
	}
	p.command, p.port = command, port
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := p.run(); err != nil {
		return fail(err)
	}
	return p, nil
}

// run starts postgres on the server's folder and port and waits (30 s at
// most) until it accepts connections.
func (p *Server) run() error {
	data, sock := filepath.Join(p.base, "data"), filepath.Join(p.base, "sock")
	logf, err := os.OpenFile(filepath.Join(p.base, "postgres.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("postgres log: %w", err)
	}
	defer logf.Close()
	p.done = make(chan struct{})
	p.cmd = p.command("postgres", "-D", data, "-k", sock, "-p", strconv.Itoa(p.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=60")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	cmd, done := p.cmd, p.done
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, p.URL)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("postgres exited:\n%s", p.LogTail())
		default:
		}
		if time.Now().After(deadline) {
			p.shutdown()
			return fmt.Errorf("PostgreSQL not accepting connections after 30s: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Restart stops the server (fast shutdown: clients are disconnected),
// leaves it down for down, and starts it again on the same data folder
// and port, as a database restart or outage in production would; it
// returns once the server accepts connections again.
func (p *Server) Restart(down time.Duration) error {
	p.shutdown()
	time.Sleep(down)
	if err := p.run(); err != nil {
		return fmt.Errorf("restarting PostgreSQL: %w", err)
	}
	return nil
}

// shutdown stops the server process (fast shutdown, then a kill after
// 20 s) and waits for it.
func (p *Server) shutdown() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// LogTail returns the end of the server's log, for failure messages.
func (p *Server) LogTail() string {
	b, _ := os.ReadFile(filepath.Join(p.base, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop shuts the server down (fast shutdown) and removes its folder.
func (p *Server) Stop() {
	p.shutdown()
	os.RemoveAll(p.base)
}
