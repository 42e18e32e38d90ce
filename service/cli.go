package service

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// Version is set at build time with -ldflags "-X github.com/trawlhq/trawl/service.Version=...":
// the Makefile and the Dockerfile stamp `git describe --tags --always --dirty`. A binary built
// without it reports the version Go recorded from version control, or "dev".
var Version = "dev"

func init() { Version = resolveVersion(Version, debug.ReadBuildInfo) }

// resolveVersion returns stamped unless it is empty or "dev"; then the main module's version as
// Go recorded it (a tag or pseudo-version with "+dirty", when built in a git checkout), or
// "dev+" and the VCS revision, or "dev".
func resolveVersion(stamped string, buildInfo func() (*debug.BuildInfo, bool)) string {
	if stamped != "" && stamped != "dev" {
		return stamped
	}
	info, ok := buildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	v := "dev+" + rev[:min(12, len(rev))]
	if dirty {
		v += "-dirty"
	}
	return v
}

// VersionLine is what `version` and `--version` print: "trawl crawler v0.1.0 (go1.26.8)".
func VersionLine(binary string) string {
	return fmt.Sprintf("trawl %s %s (%s)", binary, Version, runtime.Version())
}

// Command is a subcommand a binary accepts.
type Command struct {
	Name    string
	Summary string
}

// CLI is a binary's command line: its name, what it does when run without a command, and its
// subcommands besides version and help, which every binary has.
type CLI struct {
	Binary   string
	Summary  string
	Commands []Command
}

// ErrUsage marks a command line the binary does not accept: main prints the usage to stderr and
// exits 2 (Exit).
var ErrUsage = errors.New("usage")

// usageError is a command line the binary does not accept; it carries the usage text.
type usageError struct {
	msg   string
	usage string
}

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

// Usage is the help text: the binary's summary, its commands and where its settings come from.
func (c CLI) Usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: %s [command]\n\n%s\n\nCommands:\n", c.Binary, c.Summary)
	cmds := append(slices.Clone(c.Commands),
		Command{"version", "Print the version and exit (also --version)."},
		Command{"help", "Print this help and exit (also -h, --help)."})
	for _, cmd := range cmds {
		fmt.Fprintf(&b, "  %-12s %s\n", cmd.Name, cmd.Summary)
	}
	b.WriteString("\nSettings are TRAWL_* environment variables (README.md, Configuration).\n")
	return b.String()
}

// Parse reads the command line args (args[0] is the program). It returns the command ("" when
// there is none), or done when it has answered version or help on stdout, in which case the
// binary exits 0 without reading its configuration or touching the network. An argument that
// is no command, or one too many, is an error matching ErrUsage.
func (c CLI) Parse(args []string, stdout io.Writer) (cmd string, done bool, err error) {
	if len(args) < 2 {
		return "", false, nil
	}
	arg := args[1]
	switch arg {
	case "version", "--version":
		_, err := fmt.Fprintln(stdout, VersionLine(c.Binary))
		return "", true, err
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(stdout, c.Usage())
		return "", true, err
	}
	if !slices.ContainsFunc(c.Commands, func(cmd Command) bool { return cmd.Name == arg }) {
		return "", false, &usageError{msg: fmt.Sprintf("unknown argument %q", arg), usage: c.Usage()}
	}
	if len(args) > 2 {
		return "", false, &usageError{msg: fmt.Sprintf("%s takes no arguments, got %q", arg, args[2]), usage: c.Usage()}
	}
	return arg, false, nil
}

// Exit reports err, the error run returned, on stderr as "binary: err" and returns the exit
// status: 2 after a usage error (followed by the usage), 1 otherwise.
func Exit(stderr io.Writer, binary string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", binary, err)
	if ue, ok := errors.AsType[*usageError](err); ok {
		fmt.Fprintf(stderr, "\n%s", ue.usage)
		return 2
	}
	return 1
}
