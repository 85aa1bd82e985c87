package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/spamtagger/sysextd/internal/app"
	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

func newMirrorCmd(o *options) *cobra.Command {
	var to, tokenFile string
	cmd := &cobra.Command{
		Use:   "mirror --to DIR|file:///DIR|https://HOST/PATH|oci://REGISTRY/REPO [NAME...]",
		Short: "Copy the releases the manifests name into a static mirror or registry (all entries when none named)",
		Long: "mirror looks up the release of each named extension (all manifest entries when none is named) for this\n" +
			"host's codename and architecture, wherever the manifests say it is, downloads every asset of that release\n" +
			"with its digest checked, and writes it to a static mirror directory in the layout of docs/sources.md.\n" +
			"Serve the directory over https, or copy it, and list it in mirrors = [...].\n" +
			"With --to https://[USER:PASSWORD@]HOST/PATH the files are uploaded with HTTP PUT to a web server that\n" +
			"accepts it (nginx dav_methods PUT, Apache mod_dav, an object store), in the same layout: the assets first,\n" +
			"the index last, assets the index already lists unchanged are skipped. The credentials: a Bearer token from\n" +
			"--token-file or $SYSEXTD_MIRROR_TOKEN, else basic auth from the URL, else the login /etc/sysextd/auth.conf\n" +
			"holds for the URL (docs/sources.md; keeps the password off the command line). Never printed.\n" +
			"http:// only to loopback.\n" +
			"With --to oci://REGISTRY/REPO the release becomes an OCI artifact tagged TAG_CODENAME_ARCH and CODENAME_ARCH,\n" +
			"in REPO/IMAGE (or in REPO when its last component is the image name).",
		RunE: func(cmd *cobra.Command, names []string) error {
			return o.mirror(cmd, to, tokenFile, names)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the mirror: a `DIR`, file:///DIR, https://HOST/PATH (upload by PUT) or oci://REGISTRY/REPO")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "for an https upload: send the Bearer token in `FILE` (default $SYSEXTD_MIRROR_TOKEN)")
	_ = cmd.MarkFlagRequired("to")
	return cmd
}

// mirrorTarget is where mirror copies releases: exactly one of dir, oci
// and up is set.
type mirrorTarget struct {
	dir, oci string
	up       *source.Uploader
}

func (t mirrorTarget) String() string {
	if t.up != nil {
		return t.up.String()
	}
	return t.dir + t.oci
}

// parseMirrorTarget reads --to (and the upload token).
func (o *options) parseMirrorTarget(to, tokenFile string) (mirrorTarget, error) {
	lower := strings.ToLower(strings.TrimSpace(to))
	if strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") {
		token := strings.TrimSpace(o.getenv("SYSEXTD_MIRROR_TOKEN"))
		if tokenFile != "" {
			b, err := os.ReadFile(tokenFile)
			if err != nil {
				return mirrorTarget{}, fmt.Errorf("reading --token-file: %w", err)
			}
			if token = strings.TrimSpace(string(b)); token == "" {
				return mirrorTarget{}, fmt.Errorf("--token-file %s is empty", tokenFile)
			}
		}
		la := o.loadAuth() // its warnings come with the environment
		if la.err != nil {
			return mirrorTarget{}, la.err
		}
		up, err := source.NewUploader(to, token, source.HTTPOptions{Auth: la.auth})
		if err != nil {
			return mirrorTarget{}, fmt.Errorf("--to: %w", err)
		}
		return mirrorTarget{up: up}, nil
	}
	if tokenFile != "" {
		return mirrorTarget{}, errors.New("--token-file is for an https:// upload target")
	}
	if !strings.Contains(to, "://") {
		return mirrorTarget{dir: to}, nil
	}
	ref, err := sourceref.Parse(to)
	if err != nil {
		return mirrorTarget{}, err
	}
	switch {
	case ref.Kind == sourceref.KindOCI:
		return mirrorTarget{oci: ref.URL}, nil
	case ref.Kind == sourceref.KindMirror && strings.HasPrefix(ref.URL, "file://"):
		return mirrorTarget{dir: ref.Path}, nil
	}
	return mirrorTarget{}, fmt.Errorf("--to %s: want a directory, file:///DIR, https://HOST/PATH or oci://REGISTRY/REPO", to)
}

func (o *options) mirror(cmd *cobra.Command, to, tokenFile string, names []string) error {
	ctx := cmd.Context()
	target, err := o.parseMirrorTarget(to, tokenFile)
	if err != nil {
		return exitWith(ExitUsage, err)
	}
	e, err := o.newEnv(ctx)
	if err != nil {
		return err
	}
	defer e.close()
	if e.manifestErr != nil {
		return exitWith(ExitUsage, e.manifestErr)
	}
	if len(names) == 0 {
		names = e.eng.Manifests.Names()
	}
	var unknown []string
	for _, n := range names {
		if e.eng.Manifests.Get(n) == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return exitWith(ExitUsage, &engine.UnknownError{Names: unknown})
	}
	res := e.eng.Releases(ctx, names)
	ok, bad, network := 0, 0, 0
	for _, n := range names {
		r := res[n]
		if r.Err == nil {
			en := e.eng.Manifests.Get(n)
			// The mirror orders releases by when their source published
			// them; a source that does not say gets the time of copying.
			published := r.Release.PublishedOr(time.Now())
			switch {
			case target.oci != "":
				r.Err = o.pushOCI(ctx, target.oci, n, r.Release, e)
			case target.up != nil:
				r.Err = target.up.AddRelease(ctx, en.Image(), r.Release, e.eng.Source, published, r.Release.Prerelease)
			default:
				r.Err = source.AddToMirror(ctx, target.dir, en.Image(), r.Release, e.eng.Source, published, r.Release.Prerelease)
			}
		}
		if r.Err != nil {
			bad++
			if source.IsNetwork(r.Err) {
				network++
			}
			fmt.Fprintf(o.stderr, "sysextctl: %s: %v\n", n, r.Err)
			continue
		}
		ok++
		if !o.quiet {
			fmt.Fprintf(o.stdout, "mirrored %s %s (%s) into %s\n", n, r.Release.Version, r.Release.Tag, target)
		}
	}
	switch {
	case bad == 0:
		return nil
	case network == bad:
		return exitWith(ExitNetwork, fmt.Errorf("%d extension(s) not mirrored: network or rate limit", bad))
	case ok > 0:
		return exitWith(ExitPartial, fmt.Errorf("%d of %d extension(s) not mirrored", bad, ok+bad))
	default:
		return exitWith(ExitFailure, fmt.Errorf("%d extension(s) not mirrored", bad))
	}
}

// pushOCI pushes one extension's release to the OCI repository of its
// image under to.
func (o *options) pushOCI(ctx context.Context, to, name string, rel *source.Release, e *env) error {
	oci, err := o.ociClient(e.root)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "sysextctl-mirror-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return oci.PushRelease(ctx, to, e.eng.Manifests.Get(name).Image(), rel, e.eng.Target(), e.eng.Source, tmp)
}

// ociClient is the OCI source with this command's registry logins and
// sysextd.toml's insecure registries (a warning on stderr at each use).
func (o *options) ociClient(root rootfs.Root) (*source.OCI, error) {
	srcs, err := app.LoadSources(root)
	if err != nil {
		return nil, err
	}
	return source.NewOCI(source.HTTPOptions{}, source.OCIConfig{Logins: o.loadAuth().logins, Insecure: srcs.Insecure,
		Warn: func(msg string) { fmt.Fprintln(o.stderr, "sysextctl: warning:", msg) }}, ""), nil
}
