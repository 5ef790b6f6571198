// Command ferry is the one Ferry binary: `ferry serve` runs the server
// (device plane, management APIs, portal); the other commands are its CLI.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// env is what a command reads from its surroundings, so tests can run the
// CLI in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// run executes the CLI and returns the process exit code: 0 on success, 2
// for bad usage, 1 for any other failure.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCommand(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	switch {
	case err == nil, errors.Is(err, errHelp):
		return 0
	case isUsageError(err):
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return 1
	}
}

func isUsageError(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Ferry moves IoT fleets, the scripts that manage them and the people who run them",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q; see 'ferry --help'", args[0])
			}
			return cmd.Help()
		},
	}
	// Cobra reports unknown flags and commands as plain errors; make them
	// usage errors so they exit with code 2.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err.Error()} })
	root.AddCommand(newServeCommand(e), newVersionCommand(e), newLoginCommand(e), newCACommand(e),
		newGroupCommand(e), newHubCommand(e), newDPSCommand(e),
		newSphereCommand(e), newConfigCommand(e), newLegacyCommand(e), newRoleCommand(e),
		newIntegrateCommand(e), newAuditCommand(e), newSimCommand(e), newMigrateCommand(e))
	return root
}
