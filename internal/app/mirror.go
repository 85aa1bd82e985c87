package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

// MirrorOptions say where `sysextctl mirror` copies releases.
type MirrorOptions struct {
	Root rootfs.Root
	// To is the mirror: a directory, file:///DIR, https://HOST/PATH
	// (upload by PUT) or oci://REGISTRY/REPO.
	To string
	// TokenFile holds an https upload's Bearer token (default
	// $SYSEXTD_MIRROR_TOKEN, read through Getenv).
	TokenFile string
	Getenv    func(string) string
	// Logins reads the logins (once per command) when the target needs
	// them; Warn hears the OCI client's warnings (insecure registries).
	Logins func() (Logins, error)
	Warn   func(string)
}

// ParseMirrorTarget reads the mirror target of o.
func ParseMirrorTarget(o MirrorOptions) (engine.MirrorTarget, error) {
	to := o.To
	lower := strings.ToLower(strings.TrimSpace(to))
	if strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") {
		token := strings.TrimSpace(o.Getenv("SYSEXTD_MIRROR_TOKEN"))
		if o.TokenFile != "" {
			b, err := os.ReadFile(o.TokenFile)
			if err != nil {
				return nil, fmt.Errorf("reading --token-file: %w", err)
			}
			if token = strings.TrimSpace(string(b)); token == "" {
				return nil, fmt.Errorf("--token-file %s is empty", o.TokenFile)
			}
		}
		l, err := o.Logins()
		if err != nil {
			return nil, err
		}
		up, err := source.NewUploader(to, token, source.HTTPOptions{Auth: l.Mirrors})
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		return uploadTarget{up}, nil
	}
	if o.TokenFile != "" {
		return nil, errors.New("--token-file is for an https:// upload target")
	}
	if !strings.Contains(to, "://") {
		return dirTarget(to), nil
	}
	ref, err := sourceref.Parse(to)
	if err != nil {
		return nil, err
	}
	switch {
	case ref.Kind == sourceref.KindOCI:
		return ociTarget{url: ref.URL, o: o}, nil
	case ref.Kind == sourceref.KindMirror && strings.HasPrefix(ref.URL, "file://"):
		return dirTarget(ref.Path), nil
	}
	return nil, fmt.Errorf("--to %s: want a directory, file:///DIR, https://HOST/PATH or oci://REGISTRY/REPO", to)
}

// The mirror orders releases by when their source published them; a
// source that does not say gets the time of copying.

// dirTarget is a static mirror directory.
type dirTarget string

func (d dirTarget) String() string { return string(d) }

func (d dirTarget) Add(ctx context.Context, image string, rel *source.Release, src source.Source, _ source.Target) error {
	return source.AddToMirror(ctx, string(d), image, rel, src, rel.PublishedOr(time.Now()), rel.Prerelease)
}

// uploadTarget is a web server taking the mirror's files by PUT.
type uploadTarget struct{ up *source.Uploader }

func (u uploadTarget) String() string { return u.up.String() }

func (u uploadTarget) Add(ctx context.Context, image string, rel *source.Release, src source.Source, _ source.Target) error {
	return u.up.AddRelease(ctx, image, rel, src, rel.PublishedOr(time.Now()), rel.Prerelease)
}

// ociTarget is an OCI repository: each extension's release goes to the
// repository of its image under url.
type ociTarget struct {
	url string
	o   MirrorOptions
}

func (t ociTarget) String() string { return t.url }

func (t ociTarget) Add(ctx context.Context, image string, rel *source.Release, src source.Source, target source.Target) error {
	oci, err := t.client()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "sysextctl-mirror-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return oci.PushRelease(ctx, t.url, image, rel, target, src, tmp)
}

// client is the OCI source with the command's registry logins and
// sysextd.toml's insecure registries (a warning at each use).
func (t ociTarget) client() (*source.OCI, error) {
	srcs, err := LoadSources(t.o.Root)
	if err != nil {
		return nil, err
	}
	l, err := t.o.Logins()
	if err != nil {
		return nil, err
	}
	return source.NewOCI(source.HTTPOptions{}, source.OCIConfig{Logins: l.Registries, Insecure: srcs.Insecure, Warn: t.o.Warn}, ""), nil
}
