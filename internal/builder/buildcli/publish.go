package buildcli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/builder/build"
	"github.com/spamtagger/sysextd/internal/osrelease"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/trust"
)

func newPublishCmd(getenv func(string) string) *cobra.Command {
	g := &githubOptions{getenv: getenv}
	var dir, tag, to string
	var insecure []string
	var phased int
	var so signOptions
	cmd := &cobra.Command{
		Use:   "publish [--dir output] [--to DIR|oci://REGISTRY/REPO] [metadata.json]",
		Short: "Publish a built release: a GitHub release (draft, assets, then published) or a static directory",
		Long: "publish checks every asset of DIR against DIR/SHA256SUMS, then either creates the GitHub\n" +
			"release of metadata.json's repository (token from GITHUB_TOKEN) as a draft, uploads the\n" +
			"assets and publishes it, so that a half-uploaded release is never the latest; or, with\n" +
			"--to, copies the assets to TO/TAG/ and writes TO/latest.json last. With --to oci://REGISTRY/REPO\n" +
			"each image is pushed as the OCI artifact sysextctl mirror makes, tagged TAG_CODENAME_ARCH and\n" +
			"CODENAME_ARCH; logins come from /etc/sysextd/auth.json (when readable), then the user's\n" +
			"podman/oras/docker login files (docs/sources.md).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("phased") {
				// rollout: phase.go. Written, summed and signed before the
				// assets are checked and sent.
				if _, err := parsePercent(strconv.Itoa(phased)); err != nil {
					return err
				}
				signers, err := so.signers()
				if err != nil {
					return err
				}
				if err := setPhaseInDir(dir, phased, signers); err != nil {
					return err
				}
			}
			assets, err := verifiedAssets(dir)
			if err != nil {
				return err
			}
			rj, err := releaseFromDir(dir)
			if err != nil {
				return err
			}
			if rj == nil {
				return fmt.Errorf("%s has no release.json: run sysext-build build first", dir)
			}
			if tag == "" {
				tag = rj.Version
			}
			w := cmd.OutOrStdout()
			if strings.HasPrefix(to, "oci://") {
				return publishOCI(cmd.Context(), w, getenv, dir, to, tag, assets, insecure)
			}
			if to != "" {
				if err := publishDir(dir, to, tag, assets); err != nil {
					return err
				}
				fmt.Fprintf(w, "published %s to %s\n", tag, filepath.Join(to, tag))
				return nil
			}
			p, err := g.releaseClient(metadataArg(args), "create")
			if err != nil {
				return err
			}
			url, err := publishGitHub(cmd.Context(), p, tag, releaseNotes(dir, assets), dir, assets)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "published %s: %s\n", tag, url)
			return nil
		},
	}
	g.register(cmd.Flags())
	cmd.Flags().StringVar(&dir, "dir", "output", "directory written by sysext-build build")
	cmd.Flags().StringVar(&tag, "tag", "", "release tag (default: release.json's version)")
	cmd.Flags().StringVar(&to, "to", "", "write a static directory, or push to oci://REGISTRY/REPO, instead of a GitHub release")
	cmd.Flags().StringArrayVar(&insecure, "insecure-registry", nil, "reach this registry (`HOST:PORT`) over plain HTTP: LAN registries only (repeatable)")
	cmd.Flags().IntVar(&phased, "phased", 100, "let only this share (0-100) of appliances take the release at first: sets phased_percentage in release.json (raise it later with sysext-build phase; docs/fleet.md)")
	so.register(cmd)
	return cmd
}

// verifiedAssets returns the files SHA256SUMS lists (plus SHA256SUMS)
// after checking each one's hash.
func verifiedAssets(dir string) ([]string, error) {
	sums := filepath.Join(dir, "SHA256SUMS")
	f, err := os.Open(sums)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w (run sysext-build build first)", sums, err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(want) != 64 || name == "" || strings.ContainsAny(name, "/\\") {
			return nil, fmt.Errorf("%s:%d: not \"SHA256  NAME\"", sums, line)
		}
		got, err := build.FileSHA256(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if got != want {
			return nil, fmt.Errorf("%s: sha256 %s, but %s:%d says %s", name, got, sums, line, want)
		}
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s lists no files", sums)
	}
	names = append(names, "SHA256SUMS")
	// Signatures of SHA256SUMS travel with it.
	for _, sig := range []string{trust.MinisignFile, trust.OpenPGPFile} {
		if _, err := os.Stat(filepath.Join(dir, sig)); err == nil {
			names = append(names, sig)
		}
	}
	return names, nil
}

// releaseNotes is the template's table of dist, package version and arch.
func releaseNotes(dir string, assets []string) string {
	var b strings.Builder
	b.WriteString("| Debian Version | Package Version | Architecture |\n| -------------- | --------------- | ------------ |\n")
	for _, a := range assets {
		if !strings.HasSuffix(a, ".manifest") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, a))
		if err != nil {
			continue
		}
		f := osrelease.Parse(data)
		fmt.Fprintf(&b, "| %s | %s | %s |\n", f["VERSION_CODENAME"], f["PACKAGE_VERSION"], f["ARCH"])
	}
	return b.String()
}

// publishGitHub creates the release as a draft, uploads every asset and
// then publishes it. If anything fails, the draft is deleted, so the
// release never shows half its assets and a rerun starts clean.
func publishGitHub(ctx context.Context, p *source.GitHubPublisher, tag, notes, dir string, assets []string) (string, error) {
	rel, err := p.CreateDraft(ctx, tag, tag, notes)
	if err != nil {
		return "", fmt.Errorf("creating draft release %s of %s/%s: %w", tag, p.Owner, p.Repo, err)
	}
	fail := func(err error) (string, error) {
		if derr := p.DeleteRelease(context.WithoutCancel(ctx), rel.ID); derr != nil {
			return "", fmt.Errorf("%w (and deleting the draft %d failed: %v)", err, rel.ID, derr)
		}
		return "", fmt.Errorf("%w (the draft release was deleted)", err)
	}
	for _, name := range assets {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return fail(err)
		}
		err = p.Upload(ctx, rel.ID, name, f)
		f.Close()
		if err != nil {
			return fail(fmt.Errorf("uploading %s: %w", name, err))
		}
	}
	pub, err := p.PublishDraft(ctx, rel.ID)
	if err != nil {
		return fail(fmt.Errorf("publishing release %s: %w", tag, err))
	}
	return pub.URL, nil
}

// publishDir copies the assets to to/tag/ (through a temporary directory
// renamed into place) and then writes to/latest.json.
func publishDir(dir, to, tag string, assets []string) error {
	if tag == "" || strings.ContainsAny(tag, "/\\") || tag == "." || tag == ".." {
		return &exitError{ExitUsage, fmt.Errorf("tag %q cannot name a directory", tag)}
	}
	final := filepath.Join(to, tag)
	if _, err := os.Stat(final); err == nil {
		return fmt.Errorf("%s exists already: a release is never rewritten", final)
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(to, ".publish-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, name := range assets {
		if err := copyFile(filepath.Join(dir, name), filepath.Join(tmp, name)); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	latest := filepath.Join(to, ".latest.json.tmp")
	if err := copyFile(filepath.Join(final, "release.json"), latest); err != nil {
		return err
	}
	return os.Rename(latest, filepath.Join(to, "latest.json"))
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
