// Command trunkpass runs the trunkpass issuer, SIP edge and demo, and mints
// and inspects credentials from the command line.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// rootCmd is the trunkpass command; each subcommand file adds itself in init.
var rootCmd = &cobra.Command{
	Use:           "trunkpass",
	Short:         "Chain of trust from customer websites to SIP trunks",
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	if err := rootCmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "trunkpass:", err)
		os.Exit(1)
	}
}
