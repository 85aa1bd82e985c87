package buildcli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/trust"
)

// The rollout keys of release.json (docs/fleet.md). sysextd reads them
// only from a release.json that SHA256SUMS lists, so changing one means
// writing SHA256SUMS again and signing it again.
const (
	keyPhased    = "phased_percentage"
	keyWithdrawn = "withdrawn"
)

// signOptions are the --sign-key flags of the commands that rewrite
// SHA256SUMS.
type signOptions struct {
	keys         []string
	passwordFile string
}

func (s *signOptions) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&s.keys, "sign-key", nil, "sign the rewritten SHA256SUMS with this minisign or OpenPGP secret key (repeatable; needed when the release is signed)")
	cmd.Flags().StringVar(&s.passwordFile, "sign-password-file", "", "file holding the password of an encrypted signing key")
}

func (s *signOptions) signers() ([]trust.Signer, error) {
	var password []byte
	if s.passwordFile != "" {
		b, err := os.ReadFile(s.passwordFile)
		if err != nil {
			return nil, &exitError{ExitUsage, fmt.Errorf("reading password: %w", err)}
		}
		password = bytes.TrimRight(b, "\r\n")
	}
	var out []trust.Signer
	for _, k := range s.keys {
		sg, err := trust.LoadSigner(k, password)
		if err != nil {
			return nil, &exitError{ExitUsage, err}
		}
		out = append(out, sg)
	}
	return out, nil
}

// releaseFiles are the assets a rollout change rewrites: release.json,
// SHA256SUMS and its signatures, by name.
type releaseFiles map[string][]byte

// edit sets key to value in release.json, keeping every other field as
// it was (a newer builder's fields included), then writes SHA256SUMS with
// release.json's new hash and signs it with signers. A release signed
// before must be signed again by a key of each kind it was signed with:
// a stale signature would make every appliance refuse it. It returns the
// names it changed, in the order they should be replaced.
func (f releaseFiles) edit(key string, value any, signers []trust.Signer) ([]string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(f["release.json"], &fields); err != nil {
		return nil, fmt.Errorf("reading release.json: %w", err)
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	fields[key] = raw
	rj, err := json.MarshalIndent(fields, "", "  ")
	if err != nil {
		return nil, err
	}
	rj = append(rj, '\n')
	sums, err := resum(f["SHA256SUMS"], "release.json", rj)
	if err != nil {
		return nil, err
	}
	signed := map[string]bool{}
	for _, sg := range signers {
		signed[sg.File()] = true
	}
	for _, sig := range []string{trust.MinisignFile, trust.OpenPGPFile} {
		if _, ok := f[sig]; ok && !signed[sig] {
			return nil, &exitError{ExitUsage, fmt.Errorf("the release is signed (%s): give --sign-key with a key of that kind so that SHA256SUMS is signed again, or every appliance would refuse the release", sig)}
		}
	}
	f["release.json"], f["SHA256SUMS"] = rj, sums
	changed := []string{"release.json", "SHA256SUMS"}
	for _, sg := range signers {
		sig, err := sg.Sign(sums)
		if err != nil {
			return nil, fmt.Errorf("signing SHA256SUMS with %s: %w", sg.ID(), err)
		}
		f[sg.File()] = sig
		changed = append(changed, sg.File())
	}
	return changed, nil
}

// resum returns SHA256SUMS with name's line carrying content's hash; name
// must be listed already (release.json always is).
func resum(sums []byte, name string, content []byte) ([]byte, error) {
	h := sha256.Sum256(content)
	var out bytes.Buffer
	found := false
	for i, line := range strings.SplitAfter(string(sums), "\n") {
		if line == "" {
			continue
		}
		_, n, ok := strings.Cut(strings.TrimRight(line, "\n"), "  ")
		if !ok {
			return nil, fmt.Errorf("SHA256SUMS:%d: not \"SHA256  NAME\"", i+1)
		}
		if n == name {
			line, found = hex.EncodeToString(h[:])+"  "+name+"\n", true
		}
		out.WriteString(line)
	}
	if !found {
		return nil, fmt.Errorf("SHA256SUMS does not list %s: sysextd would not trust its rollout fields", name)
	}
	return out.Bytes(), nil
}

// currentPhase reads phased_percentage from release.json (100 when unset).
func (f releaseFiles) currentPhase() (pct int, withdrawn bool, err error) {
	var r struct {
		Phased    *int `json:"phased_percentage"`
		Withdrawn bool `json:"withdrawn"`
	}
	if err := json.Unmarshal(f["release.json"], &r); err != nil {
		return 0, false, fmt.Errorf("reading release.json: %w", err)
	}
	if r.Phased == nil {
		return 100, r.Withdrawn, nil
	}
	return *r.Phased, r.Withdrawn, nil
}

func parsePercent(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100 {
		return 0, &exitError{ExitUsage, fmt.Errorf("phased percentage %q: want a whole number from 0 to 100", s)}
	}
	return n, nil
}

// rolloutTarget is where a published release lives: a GitHub release or a
// static directory.
type rolloutTarget interface {
	read(ctx context.Context) (releaseFiles, error)
	replace(ctx context.Context, f releaseFiles, names []string) error
}

// dirTarget is TO/TAG of `publish --to`. Each file is replaced by a
// rename; latest.json follows when it is this release's.
type dirTarget struct{ to, tag string }

func (d dirTarget) read(context.Context) (releaseFiles, error) {
	f := releaseFiles{}
	for _, n := range []string{"release.json", "SHA256SUMS", trust.MinisignFile, trust.OpenPGPFile} {
		b, err := os.ReadFile(filepath.Join(d.to, d.tag, n))
		if errors.Is(err, os.ErrNotExist) && n != "release.json" && n != "SHA256SUMS" {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading release %s: %w", d.tag, err)
		}
		f[n] = b
	}
	return f, nil
}

func (d dirTarget) replace(_ context.Context, f releaseFiles, names []string) error {
	latest := filepath.Join(d.to, "latest.json")
	old, _ := os.ReadFile(filepath.Join(d.to, d.tag, "release.json"))
	cur, _ := os.ReadFile(latest)
	for _, n := range names {
		if err := writeAtomic(filepath.Join(d.to, d.tag, n), f[n]); err != nil {
			return err
		}
	}
	if len(cur) > 0 && bytes.Equal(cur, old) {
		return writeAtomic(latest, f["release.json"])
	}
	return nil
}

func writeAtomic(p string, data []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// githubTarget is a GitHub release. GitHub never overwrites an asset:
// each is deleted and uploaded again, release.json first and the
// signatures last. An appliance that reads in between finds a release.json
// SHA256SUMS does not vouch for and refuses the release for that check
// (fail closed); the next check sees it whole.
type githubTarget struct {
	p   *source.GitHubPublisher
	tag string
	rel *source.PublishedRelease
}

func (g *githubTarget) read(ctx context.Context) (releaseFiles, error) {
	rel, err := g.p.ByTag(ctx, g.tag)
	if err != nil {
		return nil, fmt.Errorf("looking up release %s of %s/%s: %w", g.tag, g.p.Owner, g.p.Repo, err)
	}
	g.rel = rel
	f := releaseFiles{}
	for _, a := range rel.Assets {
		switch a.Name {
		case "release.json", "SHA256SUMS", trust.MinisignFile, trust.OpenPGPFile:
		default:
			continue
		}
		b, err := g.p.Download(ctx, a, 4<<20)
		if err != nil {
			return nil, fmt.Errorf("downloading %s of %s: %w", a.Name, g.tag, err)
		}
		f[a.Name] = b
	}
	for _, n := range []string{"release.json", "SHA256SUMS"} {
		if _, ok := f[n]; !ok {
			return nil, fmt.Errorf("release %s of %s/%s has no %s", g.tag, g.p.Owner, g.p.Repo, n)
		}
	}
	return f, nil
}

func (g *githubTarget) replace(ctx context.Context, f releaseFiles, names []string) error {
	for _, n := range names {
		for _, a := range g.rel.Assets {
			if a.Name != n {
				continue
			}
			if err := g.p.DeleteAsset(ctx, a.ID); err != nil {
				return fmt.Errorf("replacing %s of %s: deleting the old one: %w", n, g.tag, err)
			}
		}
		if err := g.p.UploadBytes(ctx, g.rel.ID, n, f[n]); err != nil {
			return fmt.Errorf("replacing %s of %s: the old one is deleted, uploading the new one failed (run the command again): %w", n, g.tag, err)
		}
	}
	return nil
}

// rolloutCmd builds `phase` and `withdraw`: find the release (GitHub,
// --to DIR or --to oci://), change release.json through change, rewrite and re-sign
// SHA256SUMS, replace the files.
func rolloutCmd(getenv func(string) string, use, short, long string, nargs int,
	change func(f releaseFiles, args []string) (key string, value any, msg string, err error)) *cobra.Command {
	g := &githubOptions{getenv: getenv}
	var so signOptions
	var to string
	var insecure []string
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long,
		Args: cobra.RangeArgs(nargs, nargs+1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tag := args[0]
			signers, err := so.signers()
			if err != nil {
				return err
			}
			var t rolloutTarget
			if strings.HasPrefix(to, "oci://") {
				if t, err = newOCITarget(getenv, to, tag, insecure); err != nil {
					return err
				}
			} else if to != "" {
				t = dirTarget{to: to, tag: tag}
			} else {
				p, err := g.releaseClient(metadataArg(args[nargs:]), "edit")
				if err != nil {
					return err
				}
				t = &githubTarget{p: p, tag: tag}
			}
			f, err := t.read(cmd.Context())
			if err != nil {
				return err
			}
			key, value, msg, err := change(f, args[1:nargs])
			if err != nil {
				return err
			}
			names, err := f.edit(key, value, signers)
			if err != nil {
				return err
			}
			if err := t.replace(cmd.Context(), f, names); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (rewrote %s)\n", tag, msg, strings.Join(names, ", "))
			return nil
		},
	}
	g.register(cmd.Flags())
	so.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "the static directory written by publish --to, or the image's repository oci://REGISTRY/REPOSITORY/IMAGE, instead of GitHub")
	cmd.Flags().StringArrayVar(&insecure, "insecure-registry", nil, "reach this registry (`HOST:PORT`) over plain HTTP: LAN registries only (repeatable)")
	return cmd
}

func newPhaseCmd(getenv func(string) string) *cobra.Command {
	return rolloutCmd(getenv, "phase TAG PERCENT [metadata.json]", "Raise the share of appliances that take a published release",
		"phase sets release.json's phased_percentage of release TAG: an appliance takes the release when\n"+
			"hash(machine-id, extension, tag) mod 100 < PERCENT (docs/fleet.md). The share only rises\n"+
			"(5 → 25 → 100): an appliance that took the release keeps it; withdraw takes it back.\n"+
			"SHA256SUMS is written again and signed with --sign-key.", 2,
		func(f releaseFiles, args []string) (string, any, string, error) {
			pct, err := parsePercent(args[0])
			if err != nil {
				return "", nil, "", err
			}
			cur, withdrawn, err := f.currentPhase()
			if err != nil {
				return "", nil, "", err
			}
			if withdrawn {
				return "", nil, "", &exitError{ExitUsage, errors.New("the release is withdrawn: publish a new one instead")}
			}
			if pct < cur {
				return "", nil, "", &exitError{ExitUsage, fmt.Errorf("the release is phased to %d %% already: a phase only rises (appliances that took it keep it); withdraw it to take it back", cur)}
			}
			return keyPhased, pct, fmt.Sprintf("phased to %d %% (was %d %%)", pct, cur), nil
		})
}

func newWithdrawCmd(getenv func(string) string) *cobra.Command {
	return rolloutCmd(getenv, "withdraw TAG [metadata.json]", "Withdraw a published release: no appliance installs it, those that run it go back",
		"withdraw sets release.json's withdrawn of release TAG: sysextd never installs it, and an\n"+
			"appliance that runs it goes back to the newest release not withdrawn on its next check\n"+
			"(docs/fleet.md). SHA256SUMS is written again and signed with --sign-key.", 1,
		func(f releaseFiles, _ []string) (string, any, string, error) {
			return keyWithdrawn, true, "withdrawn", nil
		})
}

// setPhaseInDir sets phased_percentage in DIR/release.json before
// publish (`publish --phased N`), rewriting and re-signing SHA256SUMS.
func setPhaseInDir(dir string, pct int, signers []trust.Signer) error {
	t := dirTarget{to: filepath.Dir(dir), tag: filepath.Base(dir)}
	f, err := t.read(context.Background())
	if err != nil {
		return err
	}
	names, err := f.edit(keyPhased, pct, signers)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := writeAtomic(filepath.Join(dir, n), f[n]); err != nil {
			return err
		}
	}
	return nil
}
