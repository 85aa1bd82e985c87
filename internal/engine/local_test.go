package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/trust"
)

// requestLog is a source that records what was asked of it.
type requestLog struct {
	*fakeSource
	reqs []source.Request
}

func (r *requestLog) LatestAll(ctx context.Context, reqs []source.Request, t source.Target) map[string]source.Result {
	r.reqs = append(r.reqs, reqs...)
	return r.fakeSource.LatestAll(ctx, reqs, t)
}

// TestLocalImagePlan: install FILE and install oci://... are plans of
// their own: the image is looked up where the command line says, with
// no manifest entry made up for it, and the step is resolved like any
// other (policy, keyring, action); a file's step carries it as Local
// and is still checked like a release when applied.
func TestLocalImagePlan(t *testing.T) {
	b := newBench(t)
	src := &requestLog{fakeSource: b.src}
	b.e.Source = src
	b.publish("gamma", "1.0")
	file := filepath.Join(t.TempDir(), "sysext-gamma.raw")
	if err := os.WriteFile(file, []byte("looked up by the source"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	var unknown *UnknownError
	if _, err := b.e.MakePlan(ctx, VerbInstall, []string{"gamma"}); !errors.As(err, &unknown) {
		t.Fatalf("install gamma without its file: %v, want an UnknownError", err)
	}
	p, err := b.e.MakePlan(ctx, VerbInstall, []string{"gamma"}, LocalImage{Name: "gamma", Path: file})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 1 || len(src.reqs) != 1 {
		t.Fatalf("plan %+v after requests %+v, want one step and one lookup", p, src.reqs)
	}
	s, q := p.Steps[0], src.reqs[0]
	if s.Op != OpInstall || s.Local != file || s.Verified || s.Image != "sysext-gamma" {
		t.Errorf("step = %+v, want an install of sysext-gamma from %s, not taken as verified", s, file)
	}
	if s.Policy.Signature.Mode != trust.ModeIfPresent || s.Keyring == nil || s.ActionFrom != ActionFromImage {
		t.Errorf("step not resolved: policy %+v, keyring %v, action from %q", s.Policy, s.Keyring, s.ActionFrom)
	}
	if q.Name != "gamma" || q.URL != file || q.Image != "sysext-gamma" || len(q.Mirrors) != 0 {
		t.Errorf("lookup %+v, want gamma from %s", q, file)
	}
	if b.e.Manifests.Get("gamma") != nil {
		t.Error("planning made up a manifest entry for gamma")
	}

	// An entry's own image keeps its update action, its conflicts and its
	// image name; only the source changes.
	oci := "oci://registry.example/fleet/sysext-alpha:v2"
	b.publish("alpha", "2.0")
	src.reqs = nil
	p, err = b.e.MakePlan(ctx, VerbInstall, []string{"alpha"}, LocalImage{Name: "alpha", OCI: oci})
	if err != nil {
		t.Fatal(err)
	}
	s, q = p.Steps[0], src.reqs[0]
	if s.Local != "" || s.Image != "sysext-alpha" || s.ActionFrom != ActionFromManifest || q.URL != oci || q.Image != "sysext-alpha" {
		t.Errorf("install %s: step %+v after lookup %+v", oci, s, q)
	}

	// Applying checks the file as a release: under a required signature
	// policy an unsigned image is refused.
	b.e.SignatureDefault = trust.ModeRequired
	p, err = b.e.MakePlan(ctx, VerbInstall, []string{"gamma"}, LocalImage{Name: "gamma", Path: file})
	if err != nil {
		t.Fatal(err)
	}
	if rs := b.e.Apply(ctx, p); len(rs) != 1 || rs[0].OK || !strings.Contains(rs[0].Error, "not signed") {
		t.Errorf("unsigned local image under signature = required: %+v, want it refused", rs)
	}
	b.e.SignatureDefault = ""
	if _, err := b.e.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if p, err = b.e.MakePlan(ctx, VerbInstall, []string{"gamma"}, LocalImage{Name: "gamma", Path: file}); err != nil {
		t.Fatal(err)
	}
	mark := len(b.rec.calls)
	if rs := b.e.Apply(ctx, p); len(rs) != 1 || !rs[0].OK {
		t.Fatalf("install of the local gamma: %+v", rs)
	}
	if got := b.installed()["gamma"]; got != "1.0" {
		t.Errorf("installed gamma %q, want 1.0", got)
	}
	if dl := b.calls(mark, "^download "); len(dl) != 1 {
		t.Errorf("downloads %q, want the image through the source, its digest checked", dl)
	}

	var bad *LocalImageError
	if _, err := b.e.MakePlan(ctx, VerbInstall, []string{"gamma"}, LocalImage{Name: "gamma", Path: file + ".gone"}); !errors.As(err, &bad) || !strings.Contains(err.Error(), file+".gone") {
		t.Errorf("a missing file: %v, want a LocalImageError naming it", err)
	}
	if _, err := b.e.MakePlan(ctx, VerbRemove, []string{"gamma"}, LocalImage{Name: "gamma", Path: file}); err == nil {
		t.Error("remove with a local image: planned, want a refusal")
	}
}
