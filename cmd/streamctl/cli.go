package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/streamhouse/streamhouse/internal/version"
	pb "github.com/streamhouse/streamhouse/proto"
)

// Exit statuses.
const (
	exitOK     = 0
	exitServer = 1 // the server or the connection failed the request
	exitUsage  = 2 // the command line is wrong
)

const (
	envAddr     = "STREAMHOUSE_ADDR"
	envTLS      = "STREAMHOUSE_TLS"
	envCA       = "STREAMHOUSE_CA"
	envCert     = "STREAMHOUSE_CLIENT_CERT"
	envKey      = "STREAMHOUSE_CLIENT_KEY"
	defaultAddr = "localhost:50051"
	// maxRecvBytes lets consume receive answers holding records larger
	// than gRPC's default 4 MiB limit.
	maxRecvBytes = 256 << 20
)

const mainUsage = `streamctl: command-line client of StreamHouse's gRPC API

Usage:
  streamctl [-s ADDR] [-o text|json] [--timeout D] COMMAND [ARGS]

Commands:
  topic create NAME [-p N] [-r MS] [-c KEY=VALUE ...]   create a topic
  topic list                                            list topics
  topic get NAME                                        describe a topic and its partitions' offsets
  topic delete NAME                                     delete a topic and its data
  produce TOPIC [-p N] -v VALUE [-k KEY] [-H K=V ...]   produce one record
  produce TOPIC [-p N] --stdin                          produce one record per input line
  consume TOPIC [-p N] [--offset N] [-l LIMIT] [-f]     consume records
  offset commit -g GROUP -t TOPIC [-p N] --offset N     commit a group's offset
  offset get -g GROUP -t TOPIC [-p N]                   show a group's committed offset
  completion bash|zsh                                   print a shell completion script

Global flags (also accepted after the command):
  -s, --server ADDR   server address (default $STREAMHOUSE_ADDR, else localhost:50051)
  -o, --output FMT    text (default) or json: one JSON object per line
  --timeout D         deadline of each call (default 30s)
  --tls               connect over TLS (default $STREAMHOUSE_TLS; implied by --ca and --cert)
  --ca FILE           PEM CA certificates to trust instead of the system's (default $STREAMHOUSE_CA)
  --cert FILE         PEM client certificate for mutual TLS (default $STREAMHOUSE_CLIENT_CERT)
  --cert-key FILE     PEM key of --cert (default $STREAMHOUSE_CLIENT_KEY)
  --version           print streamctl's version and exit

Run "streamctl COMMAND --help" for a command's flags.
Exit status: 0 success, 1 server error (its message on stderr), 2 usage error.
`

// app is one invocation: its settings, streams and (lazily) its client.
type app struct {
	server string
	// serverFrom says where server came from, for error hints: "the
	// default", "from $STREAMHOUSE_ADDR" or "from -s".
	serverFrom string
	output     string
	timeout    time.Duration
	// useTLS, ca, cert and key are the TLS settings (tls.go).
	useTLS        bool
	ca, cert, key string
	stdin         io.Reader
	out           io.Writer
	errOut        io.Writer

	conn   *grpc.ClientConn
	client pb.StreamHouseClient
}

// usageError is a wrong command line; cmd names the command whose help
// the message points to.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{server: getenv(envAddr), serverFrom: "from $" + envAddr, output: "text", timeout: 30 * time.Second,
		stdin: stdin, out: stdout, errOut: stderr}
	if a.server == "" {
		a.server, a.serverFrom = defaultAddr, "the default"
	}
	a.ca, a.cert, a.key = getenv(envCA), getenv(envCert), getenv(envKey)
	err := a.tlsFromEnv(getenv(envTLS))
	if err == nil {
		err = a.dispatch(ctx, args)
	}
	if a.conn != nil {
		_ = a.conn.Close()
	}
	return a.exit(err)
}

// exit reports err and returns the exit status for it.
func (a *app) exit(err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(a.errOut, "streamctl: %s\n", ue.msg)
		if ue.cmd != "" {
			fmt.Fprintf(a.errOut, "Run 'streamctl %s --help' for usage.\n", ue.cmd)
		} else {
			fmt.Fprintln(a.errOut, "Run 'streamctl --help' for usage.")
		}
		return exitUsage
	}
	if st, ok := status.FromError(err); ok {
		switch {
		case st.Code() == codes.Unavailable && a.unreachable(st.Message()):
		case st.Code() == codes.DeadlineExceeded:
			fmt.Fprintf(a.errOut, "Error: no answer from %s within %s\n", a.server, a.timeout)
			fmt.Fprintf(a.errOut, "Hint: a longer --timeout helps a slow server.\n      %s\n", a.addressHint())
		default:
			fmt.Fprintf(a.errOut, "Error: %s (%s)\n", st.Message(), codeName(st.Code()))
		}
		return exitServer
	}
	fmt.Fprintf(a.errOut, "Error: %v\n", err)
	return exitServer
}

// codeName spells a status code as gRPC documents it: NOT_FOUND.
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

// dispatch parses the global flags and runs the command.
func (a *app) dispatch(ctx context.Context, args []string) error {
	fs := a.newFlagSet("", nil)
	showVersion := fs.Bool("version", false, "")
	if err := fs.Parse(args); err != nil {
		return a.flagError("", mainUsage, err)
	}
	if *showVersion {
		fmt.Fprintf(a.out, "streamctl %s\n", version.Read())
		return nil
	}
	if err := a.checkOutput(""); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return usagef("", "no command given")
	}
	switch rest[0] {
	case "help":
		fmt.Fprint(a.out, mainUsage)
		return nil
	case "topic":
		return a.group(ctx, "topic", topicUsage, rest[1:], map[string]func(context.Context, []string) error{
			"create": a.topicCreate, "list": a.topicList, "get": a.topicGet, "delete": a.topicDelete,
		})
	case "offset":
		return a.group(ctx, "offset", offsetUsage, rest[1:], map[string]func(context.Context, []string) error{
			"commit": a.offsetCommit, "get": a.offsetGet,
		})
	case "produce":
		return a.produce(ctx, rest[1:])
	case "consume":
		return a.consume(ctx, rest[1:])
	case "completion":
		return a.completion(rest[1:])
	case topicsCompletionCmd:
		return a.completeTopics(ctx, rest[1:])
	}
	return usagef("", "unknown command %q", rest[0])
}

// group runs a subcommand of a command group ("topic", "offset").
func (a *app) group(ctx context.Context, name, usage string, args []string, subs map[string]func(context.Context, []string) error) error {
	if len(args) == 0 {
		return usagef(name, "%s needs a subcommand", name)
	}
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprint(a.out, usage)
		return flag.ErrHelp
	}
	sub, ok := subs[args[0]]
	if !ok {
		return usagef(name, "unknown subcommand %q of %s", args[0], name)
	}
	return sub(ctx, args[1:])
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help"
}

// newFlagSet returns a flag set holding the global flags. -o is the
// output format, as --output is; commands that used to take -o as an
// offset pass that offset's setter as legacyOffset: there -o with a number
// still sets the offset, with a deprecation warning. Errors and help are
// reported by the caller, not by flag.
func (a *app) newFlagSet(name string, legacyOffset func(uint64)) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	setServer := func(s string) error {
		a.server, a.serverFrom = s, "from -s"
		return nil
	}
	fs.Func("s", "", setServer)
	fs.Func("server", "", setServer)
	fs.StringVar(&a.output, "output", a.output, "")
	if legacyOffset == nil {
		fs.StringVar(&a.output, "o", a.output, "")
	} else {
		warned := false
		fs.Func("o", "", func(s string) error {
			if s == "text" || s == "json" {
				a.output = s
				return nil
			}
			n, err := parseUint(s)
			if err != nil {
				return fmt.Errorf("%q is neither an output format (text, json) nor an offset (use --offset N)", s)
			}
			if !warned {
				fmt.Fprintf(a.errOut, "streamctl: warning: -o OFFSET is deprecated and will stop working in a later release; "+
					"use --offset %d (-o is the output format, as in every other command)\n", n)
				warned = true
			}
			legacyOffset(n)
			return nil
		})
	}
	fs.DurationVar(&a.timeout, "timeout", a.timeout, "")
	fs.BoolVar(&a.useTLS, "tls", a.useTLS, "")
	fs.StringVar(&a.ca, "ca", a.ca, "")
	fs.StringVar(&a.cert, "cert", a.cert, "")
	fs.StringVar(&a.key, "cert-key", a.key, "")
	return fs
}

// parse parses a command's flags, which may come before, between and
// after its positional arguments, and checks the positional count.
func (a *app) parse(fs *flag.FlagSet, cmd, usage string, args []string, positional ...string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, a.flagError(cmd, usage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < len(positional) {
		return nil, usagef(cmd, "%s needs %s", cmd, strings.Join(positional[len(pos):], " "))
	}
	if len(pos) > len(positional) {
		return nil, usagef(cmd, "unexpected argument %q", pos[len(positional)])
	}
	return pos, a.checkOutput(cmd)
}

// flagError prints the usage for --help or wraps a parse error.
func (a *app) flagError(cmd, usage string, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.out, usage)
		return err
	}
	return usagef(cmd, "%v", err)
}

func (a *app) checkOutput(cmd string) error {
	if a.output != "text" && a.output != "json" {
		return usagef(cmd, "output format %q: use text or json", a.output)
	}
	if a.timeout <= 0 {
		return usagef(cmd, "--timeout must be positive")
	}
	return nil
}

// connect returns the API client, creating the connection on first use.
func (a *app) connect() (pb.StreamHouseClient, error) {
	if a.client != nil {
		return a.client, nil
	}
	creds, err := a.transportCredentials()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(a.server,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)))
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", a.server, err)
	}
	a.conn, a.client = conn, pb.NewStreamHouseClient(conn)
	return a.client, nil
}

// call runs one RPC with the --timeout deadline.
func call[Req, Resp any](ctx context.Context, a *app, rpc func(context.Context, Req, ...grpc.CallOption) (Resp, error), req Req) (Resp, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return rpc(ctx, req)
}

// keyValues is a repeatable KEY=VALUE flag.
type keyValues map[string]string

func (kv keyValues) String() string { return fmt.Sprint(map[string]string(kv)) }

func (kv keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", s)
	}
	kv[k] = v
	return nil
}
