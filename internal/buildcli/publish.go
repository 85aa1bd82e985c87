package buildcli

import (
	"github.com/spf13/cobra"
)

func newPublishCmd(getenv func(string) string) *cobra.Command {
	return &cobra.Command{Use: "publish", Short: "not yet"}
}
