package buildcli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spamtagger/sysextd/internal/builder/build"
	"github.com/spamtagger/sysextd/internal/source"
)

// githubOptions are the flags of commands that talk to GitHub.
type githubOptions struct {
	api    string
	repo   string // OWNER/REPO, default from metadata.json's repository
	getenv func(string) string
}

func (g *githubOptions) register(flags interface {
	StringVar(*string, string, string, string)
}) {
	flags.StringVar(&g.api, "github-api", "https://api.github.com/", "GitHub API base URL")
	flags.StringVar(&g.repo, "repo", "", "OWNER/REPO of the releases (default: from metadata.json's repository)")
}

func (g *githubOptions) ownerRepo(m *build.Metadata) (string, string, error) {
	if g.repo != "" {
		owner, repo, ok := strings.Cut(g.repo, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return "", "", &exitError{ExitUsage, fmt.Errorf("--repo %q: want OWNER/REPO", g.repo)}
		}
		return owner, repo, nil
	}
	return source.ParseRepoURL(m.Repository)
}

// releaseClient loads metadataPath (for the repository) and returns a
// publisher of its releases that may change them; what says what the
// token must be allowed to do ("create", "edit").
func (g *githubOptions) releaseClient(metadataPath, what string) (*source.GitHubPublisher, error) {
	m, err := build.LoadMetadata(metadataPath)
	if err != nil {
		return nil, &exitError{ExitUsage, err}
	}
	owner, repo, err := g.ownerRepo(m)
	if err != nil {
		return nil, err
	}
	if g.getenv("GITHUB_TOKEN") == "" {
		return nil, &exitError{ExitUsage, fmt.Errorf("set GITHUB_TOKEN to a token that may %s releases (or use --to DIR)", what)}
	}
	return g.client(owner, repo)
}

// client is the publisher of owner/repo through --github-api, with
// GITHUB_TOKEN when set.
func (g *githubOptions) client(owner, repo string) (*source.GitHubPublisher, error) {
	u, err := url.Parse(g.api)
	if err != nil {
		return nil, &exitError{ExitUsage, fmt.Errorf("--github-api %q: %w", g.api, err)}
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return source.NewGitHubPublisher(u.String(), g.getenv("GITHUB_TOKEN"), owner, repo)
}

// latestReleaseJSON returns the release.json of the latest release of
// p's repository, or nil when the repository has no release.
func latestReleaseJSON(ctx context.Context, p *source.GitHubPublisher) (*build.ReleaseJSON, error) {
	rel, err := p.Latest(ctx)
	if errors.Is(err, source.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the latest release of %s/%s: %w", p.Owner, p.Repo, err)
	}
	a, ok := rel.Asset("release.json")
	if !ok {
		return nil, fmt.Errorf("release %s of %s/%s has no release.json", rel.Tag, p.Owner, p.Repo)
	}
	data, err := p.Download(ctx, a, 4<<20)
	if err != nil {
		return nil, fmt.Errorf("downloading release.json of %s: %w", rel.Tag, err)
	}
	return build.LoadReleaseJSON(data, p.Owner+"/"+p.Repo+" "+rel.Tag+" release.json")
}

// releaseFromDir reads DIR/release.json, nil when there is none.
func releaseFromDir(dir string) (*build.ReleaseJSON, error) {
	p := filepath.Join(dir, "release.json")
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return build.LoadReleaseJSON(data, p)
}
