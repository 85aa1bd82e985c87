package buildcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-github/v93/github"

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
// GitHub client that may change releases, with the owner and repository;
// what says what the token must be allowed to do ("create", "edit").
func (g *githubOptions) releaseClient(metadataPath, what string) (c *github.Client, owner, repo string, err error) {
	m, err := build.LoadMetadata(metadataPath)
	if err != nil {
		return nil, "", "", &exitError{ExitUsage, err}
	}
	if owner, repo, err = g.ownerRepo(m); err != nil {
		return nil, "", "", err
	}
	if g.getenv("GITHUB_TOKEN") == "" {
		return nil, "", "", &exitError{ExitUsage, fmt.Errorf("set GITHUB_TOKEN to a token that may %s releases (or use --to DIR)", what)}
	}
	c, err = g.client()
	return c, owner, repo, err
}

func (g *githubOptions) client() (*github.Client, error) {
	u, err := url.Parse(g.api)
	if err != nil {
		return nil, &exitError{ExitUsage, fmt.Errorf("--github-api %q: %w", g.api, err)}
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	base := u.String()
	opts := []github.ClientOptionsFunc{github.WithHTTPClient(&http.Client{Timeout: 10 * time.Minute}), github.WithURLs(&base, &base)}
	if tok := g.getenv("GITHUB_TOKEN"); tok != "" {
		opts = append(opts, github.WithAuthToken(tok))
	}
	return github.NewClient(opts...)
}

// latestReleaseJSON returns the release.json of the latest release of
// owner/repo, or nil when the repository has no release.
func latestReleaseJSON(ctx context.Context, c *github.Client, owner, repo string) (*build.ReleaseJSON, error) {
	rel, resp, err := c.Repositories.GetLatestRelease(ctx, owner, repo)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up the latest release of %s/%s: %w", owner, repo, err)
	}
	for _, a := range rel.Assets {
		if a.GetName() != "release.json" {
			continue
		}
		rc, _, err := c.Repositories.DownloadReleaseAsset(ctx, owner, repo, a.GetID(), http.DefaultClient)
		if err != nil {
			return nil, fmt.Errorf("downloading release.json of %s: %w", rel.GetTagName(), err)
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, 4<<20))
		if err != nil {
			return nil, fmt.Errorf("downloading release.json of %s: %w", rel.GetTagName(), err)
		}
		return build.LoadReleaseJSON(data, owner+"/"+repo+" "+rel.GetTagName()+" release.json")
	}
	return nil, fmt.Errorf("release %s of %s/%s has no release.json", rel.GetTagName(), owner, repo)
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
