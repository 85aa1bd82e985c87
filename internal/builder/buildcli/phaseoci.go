package buildcli

import (
	"context"
	"fmt"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/trust"
)

// ociTarget is a release in an OCI repository (publish --to oci://, or
// sysextctl mirror --to oci://): every artifact tagged TAG_CODENAME_ARCH
// gets the new files, each as a new manifest under its tag, and the
// moving tag follows when it named the release. An appliance reading in
// between sees either manifest whole: a registry swaps a tag at once.
type ociTarget struct {
	open func(ctx context.Context) (*source.OCIRelease, error)
	rel  *source.OCIRelease
}

func newOCITarget(getenv func(string) string, url, tag string, insecure []string) (*ociTarget, error) {
	oci, err := registryClient(getenv, insecure)
	if err != nil {
		return nil, err
	}
	return &ociTarget{open: func(ctx context.Context) (*source.OCIRelease, error) { return oci.OpenRelease(ctx, url, tag) }}, nil
}

func (o *ociTarget) read(ctx context.Context) (releaseFiles, error) {
	rel, err := o.open(ctx)
	if err != nil {
		return nil, err
	}
	o.rel = rel
	got, err := rel.Files(ctx, "release.json", "SHA256SUMS", trust.MinisignFile, trust.OpenPGPFile)
	if err != nil {
		return nil, err
	}
	for _, n := range []string{"release.json", "SHA256SUMS"} {
		if _, ok := got[n]; !ok {
			return nil, fmt.Errorf("the artifacts %v carry no %s", rel.Tags(), n)
		}
	}
	return releaseFiles(got), nil
}

func (o *ociTarget) replace(ctx context.Context, f releaseFiles, names []string) error {
	files := map[string][]byte{}
	for _, n := range names {
		files[n] = f[n]
	}
	return o.rel.Replace(ctx, files)
}
