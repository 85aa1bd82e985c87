package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/trust"
)

// signResult is sign's JSON.
type signResult struct {
	Dir        string          `json:"dir"`
	Assets     []string        `json:"assets"`
	Written    []string        `json:"written"`
	Signatures []signatureInfo `json:"signatures"`
}

type signatureInfo struct {
	File  string `json:"file"`
	KeyID string `json:"key_id"`
}

func newSignCmd(o *options) *cobra.Command {
	var keys []string
	var passwordFile string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "sign --key FILE [--key FILE] [--expires DURATION] RELEASE-DIR",
		Short: "Write SHA256SUMS for a release directory and sign it",
		Long: "sign hashes every file in RELEASE-DIR into SHA256SUMS and signs it: a minisign secret key\n" +
			"writes SHA256SUMS.minisig, an OpenPGP secret key SHA256SUMS.gpg (give --key twice for both).\n" +
			"Upload the three files with the release. RELEASE-DIR is a path on this machine; --root does\n" +
			"not apply. See docs/trust.md.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if expires < 0 {
				return exitWith(ExitUsage, fmt.Errorf("sign: --expires %s: want a positive duration such as 720h", expires))
			}
			if len(keys) == 0 {
				return exitWith(ExitUsage, errors.New("sign: --key FILE is required (a minisign or OpenPGP secret key)"))
			}
			var password []byte
			if passwordFile != "" {
				b, err := os.ReadFile(passwordFile)
				if err != nil {
					return exitWith(ExitUsage, fmt.Errorf("reading password: %w", err))
				}
				password = bytes.TrimRight(b, "\r\n")
			}
			var signers []trust.Signer
			for _, k := range keys {
				s, err := trust.LoadSigner(k, password)
				if err != nil {
					return exitWith(ExitUsage, err)
				}
				signers = append(signers, trust.WithExpiry(s, expires))
			}
			dir := args[0]
			sums, written, err := trust.SignDir(dir, signers)
			if err != nil {
				return exitWith(ExitFailure, err)
			}
			res := signResult{Dir: dir, Written: written}
			for n := range sums {
				res.Assets = append(res.Assets, n)
			}
			sort.Strings(res.Assets)
			for _, s := range signers {
				res.Signatures = append(res.Signatures, signatureInfo{File: s.File(), KeyID: s.ID()})
			}
			if o.json {
				return writeJSON(o.stdout, res)
			}
			if !o.quiet {
				fmt.Fprintf(o.stdout, "%s: %d assets\n", filepath.Join(dir, trust.SumsFile), len(res.Assets))
				for _, s := range res.Signatures {
					fmt.Fprintf(o.stdout, "%s: signed by %s\n", filepath.Join(dir, s.File), s.KeyID)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&keys, "key", nil, "secret key `FILE` (minisign, or OpenPGP armored or binary); repeat for both")
	cmd.Flags().StringVar(&passwordFile, "password-file", "", "read the secret key's password from `FILE`")
	cmd.Flags().DurationVar(&expires, "expires", 0, "write an expiry `DURATION` after now into the signed data (e.g. 720h); verifiers refuse the release after it, so a stale mirror is noticed")
	return cmd
}
