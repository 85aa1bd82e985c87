package source

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-github/v93/github"
)

// GitHubPublisher writes the releases of one repository through the GitHub
// API: the writing half of the GitHub provider, for sysext-build's publish,
// phase, withdraw and check. It has a client of its own: an upload of an
// image may take minutes, which the reader's stall watchdog and lookup
// cache are not made for.
//
// Errors are go-github's as they come (IsNetwork and IsRateLimit classify
// them); a release or repository that does not exist wraps ErrNotFound.
type GitHubPublisher struct {
	Owner, Repo string
	client      *github.Client
}

// PublishedRelease is one release as a publisher sees it, drafts included.
type PublishedRelease struct {
	ID     int64
	Tag    string
	Draft  bool
	URL    string  // its page (html_url)
	Assets []Asset // ID, Name, URL, BrowserURL, Size, Digest
}

// Asset returns the asset named name.
func (r *PublishedRelease) Asset(name string) (Asset, bool) {
	for _, a := range r.Assets {
		if a.Name == name {
			return a, true
		}
	}
	return Asset{}, false
}

// publishTimeout bounds each API request of a publisher, uploads included.
const publishTimeout = 10 * time.Minute

// NewGitHubPublisher returns a publisher for owner/repo through the API at
// apiBase (ending in "/"; uploads go where UploadBase says), authenticated
// with token when it is not "".
func NewGitHubPublisher(apiBase, token, owner, repo string) (*GitHubPublisher, error) {
	upload := UploadBase(apiBase)
	opts := []github.ClientOptionsFunc{github.WithHTTPClient(&http.Client{Timeout: publishTimeout}), github.WithURLs(&apiBase, &upload)}
	if token != "" {
		opts = append(opts, github.WithAuthToken(token))
	}
	c, err := github.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	return &GitHubPublisher{Owner: owner, Repo: repo, client: c}, nil
}

// UploadBase is where release assets are uploaded for the API at apiBase:
// github.com takes them at uploads.github.com, GitHub Enterprise Server
// at /api/uploads/ beside its /api/v3/; any other base (a test server, a
// proxy) takes them itself.
func UploadBase(apiBase string) string {
	switch {
	case strings.TrimSuffix(apiBase, "/") == strings.TrimSuffix(DefaultGitHubAPI, "/"):
		return "https://uploads.github.com/"
	case strings.HasSuffix(apiBase, "/api/v3/"):
		return strings.TrimSuffix(apiBase, "v3/") + "uploads/"
	}
	return apiBase
}

func publishedRelease(rel *github.RepositoryRelease) *PublishedRelease {
	return &PublishedRelease{ID: rel.GetID(), Tag: rel.GetTagName(), Draft: rel.GetDraft(), URL: rel.GetHTMLURL(), Assets: assetsOf(rel)}
}

// notFound wraps a 404 of go-github into ErrNotFound, keeping its text.
func notFound(resp *github.Response, err error) error {
	if err != nil && resp != nil && resp.StatusCode == http.StatusNotFound {
		return &notFoundError{err}
	}
	return err
}

type notFoundError struct{ err error }

func (e *notFoundError) Error() string   { return e.err.Error() }
func (e *notFoundError) Unwrap() []error { return []error{ErrNotFound, e.err} }

// Latest returns the repository's latest release (GitHub's choice: the
// newest that is neither a draft nor a prerelease). None is ErrNotFound.
func (p *GitHubPublisher) Latest(ctx context.Context) (*PublishedRelease, error) {
	rel, resp, err := p.client.Repositories.GetLatestRelease(ctx, p.Owner, p.Repo)
	if err != nil {
		return nil, notFound(resp, err)
	}
	return publishedRelease(rel), nil
}

// ByTag returns the release tagged tag, a draft too (for a token that may
// write). None is ErrNotFound.
func (p *GitHubPublisher) ByTag(ctx context.Context, tag string) (*PublishedRelease, error) {
	rel, resp, err := p.client.Repositories.GetReleaseByTag(ctx, p.Owner, p.Repo, tag)
	if err != nil {
		return nil, notFound(resp, err)
	}
	return publishedRelease(rel), nil
}

// Download returns the bytes of asset a (by its ID, through the API, which
// redirects to the storage), at most limit of them.
func (p *GitHubPublisher) Download(ctx context.Context, a Asset, limit int64) ([]byte, error) {
	rc, _, err := p.client.Repositories.DownloadReleaseAsset(ctx, p.Owner, p.Repo, a.ID, http.DefaultClient)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

// CreateDraft creates a draft release tagged tag, named name, with body as
// its notes.
func (p *GitHubPublisher) CreateDraft(ctx context.Context, tag, name, body string) (*PublishedRelease, error) {
	rel, _, err := p.client.Repositories.CreateRelease(ctx, p.Owner, p.Repo, github.CreateReleaseRequest{
		TagName: tag, Name: new(name), Body: new(body), Draft: new(true),
	})
	if err != nil {
		return nil, err
	}
	return publishedRelease(rel), nil
}

// PublishDraft edits release id to be a draft no longer, and returns it as
// published.
func (p *GitHubPublisher) PublishDraft(ctx context.Context, id int64) (*PublishedRelease, error) {
	rel, _, err := p.client.Repositories.UpdateRelease(ctx, p.Owner, p.Repo, id, github.UpdateReleaseRequest{Draft: new(false)})
	if err != nil {
		return nil, err
	}
	return publishedRelease(rel), nil
}

// DeleteRelease deletes release id (its tag stays).
func (p *GitHubPublisher) DeleteRelease(ctx context.Context, id int64) error {
	_, err := p.client.Repositories.DeleteRelease(ctx, p.Owner, p.Repo, id)
	return err
}

// Upload adds f to release id as name. GitHub never overwrites an asset:
// replacing one is DeleteAsset, then Upload.
func (p *GitHubPublisher) Upload(ctx context.Context, id int64, name string, f *os.File) error {
	_, _, err := p.client.Repositories.UploadReleaseAsset(ctx, p.Owner, p.Repo, id, &github.UploadOptions{Name: name}, f)
	return err
}

// UploadBytes is Upload of data. The API wants a file (for its size and
// media type), so data goes through a temporary one named name.
func (p *GitHubPublisher) UploadBytes(ctx context.Context, id int64, name string, data []byte) error {
	dir, err := os.MkdirTemp("", "sysext-build-asset-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, filepath.Base(name))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return p.Upload(ctx, id, name, f)
}

// DeleteAsset deletes the asset with id.
func (p *GitHubPublisher) DeleteAsset(ctx context.Context, id int64) error {
	_, err := p.client.Repositories.DeleteReleaseAsset(ctx, p.Owner, p.Repo, id)
	return err
}
