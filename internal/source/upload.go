package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Uploader writes a static mirror (docs/sources.md) to a web server that
// accepts HTTP PUT: nginx with dav_methods PUT, Apache mod_dav, an object
// store. Files go where the directory layout puts them, BASE/IMAGE/TAG/NAME
// and BASE/IMAGE/index.json, and the index is put last, after every asset
// it names, so a reader never sees an index naming a missing file.
type Uploader struct {
	base   string // normalized, without user info
	user   *url.Userinfo
	token  string
	opts   HTTPOptions
	client *http.Client
}

// NewUploader returns an uploader to raw, https://[USER:PASSWORD@]HOST/PATH
// (http:// to loopback only). A token, when not "", is sent as
// "Authorization: Bearer TOKEN"; user info in raw as basic auth; not both.
// With neither, the login opts.Auth holds for the URL (auth.conf) is sent,
// which keeps the password off the command line. Neither the password nor
// the token ever appears in a message.
func NewUploader(raw, token string, opts HTTPOptions) (*Uploader, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error quotes the URL, password included.
		return nil, errors.New("upload URL does not parse: want https://[USER:PASSWORD@]HOST/PATH")
	}
	if s := strings.ToLower(u.Scheme); (s != "https" && s != "http") || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("upload URL: want https://[USER:PASSWORD@]HOST/PATH (http:// to loopback only)")
	}
	user := u.User
	u.User = nil
	ref, err := sourceref.Parse(u.String())
	if err != nil {
		return nil, err
	}
	if ref.Kind != sourceref.KindMirror || ref.Host == "" {
		return nil, fmt.Errorf("upload URL %s: want https://HOST/PATH (a static mirror on a web server accepting PUT)", Redact(u))
	}
	if user != nil && token != "" {
		return nil, fmt.Errorf("upload URL %s: give either a token or a user and password in the URL, not both", ref.URL)
	}
	opts.defaults()
	c := opts.client()
	// A redirect is answered as an error: a PUT (and its credentials) goes
	// only where it was told to.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Uploader{base: ref.URL, user: user, token: token, opts: opts, client: c}, nil
}

// String is the base URL, without user info.
func (u *Uploader) String() string { return u.base }

// AddRelease is AddToMirror for the web server: every asset of rel that
// the remote index does not already list with the same size and digest
// (and that a HEAD finds with that size) is downloaded through src,
// verified, into a temporary directory and put; then the merged index.
// On any error the index is left as it was.
func (u *Uploader) AddRelease(ctx context.Context, image string, rel *Release, src Source, published time.Time, prerelease bool) error {
	tmp, err := os.MkdirTemp("", "sysextd-upload-")
	if err != nil {
		return fmt.Errorf("mirroring %s: %w", image, err)
	}
	defer os.RemoveAll(tmp)
	return writeRelease(ctx, uploadWriter{u, tmp}, image, rel, src, published, prerelease)
}

// uploadWriter is the mirrorWriter of an Uploader; downloads are staged
// in tmp.
type uploadWriter struct {
	*Uploader
	tmp string
}

func (w uploadWriter) indexLoc(image string) string { return w.base + "/" + image + "/index.json" }

func (w uploadWriter) readIndex(ctx context.Context, image string) ([]byte, error) {
	resp, err := w.do(ctx, http.MethodGet, w.indexLoc(image), nil, 0, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		return nil, w.statusError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIndex+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", w.indexLoc(image), Classify(err))
	}
	if len(b) > maxIndex {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", w.indexLoc(image), maxIndex, ErrTooLarge)
	}
	return b, nil
}

func (w uploadWriter) has(ctx context.Context, image, tag string, a IndexAsset) (bool, error) {
	resp, err := w.do(ctx, http.MethodHead, w.base+"/"+image+"/"+tag+"/"+a.Name, nil, 0, "")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return resp.ContentLength == a.Size, nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return false, nil
	}
	return false, w.statusError(resp)
}

func (w uploadWriter) stage(string, string) (string, error) { return w.tmp, nil }

func (w uploadWriter) putAsset(ctx context.Context, image, tag, name string, d *Downloaded) error {
	return w.put(ctx, []string{image, tag, name}, "application/octet-stream", d.Size, func() (io.ReadCloser, error) {
		return os.Open(d.Path)
	})
}

func (w uploadWriter) putIndex(ctx context.Context, image string, b []byte) error {
	return w.put(ctx, []string{image, "index.json"}, "application/json", int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
}

// put PUTs the body to BASE/PATH... A 409 (the parent collection is
// missing: WebDAV servers such as Apache mod_dav; nginx answers 500 and
// needs create_full_put_path) is answered by creating the collections
// with MKCOL and one more PUT.
func (w uploadWriter) put(ctx context.Context, path []string, ctype string, size int64, body func() (io.ReadCloser, error)) error {
	target := w.base + "/" + strings.Join(path, "/")
	for try := 0; ; try++ {
		r, err := body()
		if err != nil {
			return err
		}
		resp, err := w.do(ctx, http.MethodPut, target, r, size, ctype)
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 && (resp.StatusCode != http.StatusConflict || try > 0) {
			defer resp.Body.Close()
			return w.statusError(resp)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return nil
		}
		if err := w.mkcol(ctx, path[:len(path)-1]); err != nil {
			return err
		}
	}
}

// mkcol creates BASE and each collection of dirs under it in turn; one
// that exists already (405) is fine.
func (w uploadWriter) mkcol(ctx context.Context, dirs []string) error {
	for i := 0; i <= len(dirs); i++ {
		target := strings.Join(append([]string{w.base}, dirs[:i]...), "/") + "/"
		resp, err := w.do(ctx, "MKCOL", target, nil, 0, "")
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusMethodNotAllowed {
			err := w.statusError(resp)
			resp.Body.Close()
			return fmt.Errorf("%w (the server wants the directories to exist: create them)", err)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	}
	return nil
}

// do sends one request with the credentials, under the download deadline.
// Failures to reach the server are classified (IsNetwork).
func (w uploadWriter) do(ctx context.Context, method, target string, body io.ReadCloser, size int64, ctype string) (*http.Response, error) {
	ctx, cancelDeadline := context.WithTimeout(ctx, w.opts.Deadline)
	ctx, stop := context.WithCancelCause(ctx)
	cancel := func() { stop(nil); cancelDeadline() }
	if body != nil {
		body = paced(body, w.opts.MinRate, w.opts.RateWindow, stop)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		cancel()
		if body != nil {
			body.Close()
		}
		return nil, fmt.Errorf("building request: %w", err)
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("User-Agent", "sysextd")
	switch {
	case w.token != "":
		req.Header.Set("Authorization", "Bearer "+w.token)
	case w.user != nil:
		pw, _ := w.user.Password()
		req.SetBasicAuth(w.user.Username(), pw)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			err = fmt.Errorf("%s %s: %w", method, target, c)
		}
		cancel()
		return nil, Classify(err)
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// statusError describes an unexpected answer: method, URL, status, the
// first line of the body (unless it is an HTML error page), and for 401/403 and redirects what to check.
// 5xx and 408 are network errors, 429 (and 403 with Retry-After) rate
// limits, as for downloads.
func (w uploadWriter) statusError(resp *http.Response) error {
	line, _ := bufio.NewReader(io.LimitReader(resp.Body, 4096)).ReadString('\n')
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		line = "" // an error page says no more than the status
	}
	if rl := RateLimitFromResponse(resp, time.Now()); rl != nil {
		return rl
	}
	se := &StatusError{Method: resp.Request.Method, URL: Redact(resp.Request.URL), Status: resp.StatusCode, Body: printable(line, 200)}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		se.Hint = "the server refused the credentials: check --token-file or SYSEXTD_MIRROR_TOKEN (Bearer token), the user and password in the URL, or a machine line in /etc/sysextd/auth.conf (basic auth), and that they may write there"
		if e := w.opts.Auth.lookup(resp.Request.URL); e != nil && w.token == "" && w.user == nil {
			se.Hint = fmt.Sprintf("the server refused the login for %s in %s:%d, or it may not write there", resp.Request.URL.Host, e.file, e.line)
		}
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		se.Hint = "the server redirects; give the final URL"
	case resp.StatusCode == http.StatusMethodNotAllowed && resp.Request.Method == http.MethodPut:
		se.Hint = "the server does not accept PUT there (nginx: dav_methods PUT)"
	}
	return Classify(se)
}

// printable keeps at most n runes of s's printable characters, trimmed.
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		if n == 0 {
			b.WriteString("...")
			break
		}
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			n--
		}
	}
	return b.String()
}

// paced holds an upload to the pace downloads are held to: a server that
// takes fewer than minRate bytes/s over a window (Throttle), or no byte at
// all for a window (it stopped reading, and our write blocks), fails the
// request instead of holding the lock until the deadline.
func paced(body io.ReadCloser, minRate int64, window time.Duration, stop context.CancelCauseFunc) io.ReadCloser {
	if window <= 0 {
		return body
	}
	p := &pacedBody{r: Throttle(body, minRate, window), c: body, window: window}
	p.timer = time.AfterFunc(window, func() {
		stop(fmt.Errorf("%w: the server took no bytes of the upload for %s", ErrStalled, window))
	})
	return p
}

type pacedBody struct {
	r      io.Reader
	c      io.Closer
	timer  *time.Timer
	window time.Duration
}

func (p *pacedBody) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	switch {
	case err != nil:
		p.timer.Stop() // all sent (or failed): the answer is the header timeout's
	case n > 0:
		p.timer.Reset(p.window)
	}
	return n, err
}

func (p *pacedBody) Close() error {
	p.timer.Stop()
	return p.c.Close()
}
