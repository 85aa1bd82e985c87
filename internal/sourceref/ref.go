// Package sourceref parses source URLs into a Ref: where releases are
// published, without any client. It imports no network code, so that
// manifests can be checked by packages that must not pull one in.
package sourceref

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
)

// Kind is the kind of a source.
type Kind string

// Kinds of sources.
const (
	KindGitHub Kind = "github" // https://github.com/OWNER/REPO or a configured GHES host
	KindMirror Kind = "mirror" // static mirror over https:// (http:// to loopback) or file://
	KindOCI    Kind = "oci"    // oci://REGISTRY/REPO
	KindLocal  Kind = "local"  // a local image file
)

// Ref is a parsed source URL. It says where, not how: no network is used
// to make one.
type Ref struct {
	Kind Kind
	// URL is the normalized URL (for KindLocal the absolute path).
	URL string
	// Host is the GitHub host, the mirror's host or the OCI registry
	// (with port); "" for file:// and local paths.
	Host string
	// Owner and Repo are the GitHub repository.
	Owner, Repo string
	// Path is the mirror's path (file:// the directory), the OCI
	// repository, or the local file.
	Path string
	// Tag is the OCI tag of oci://REGISTRY/REPO:TAG, "" when none is
	// named (URL never carries it).
	Tag string
}

// Parse reads a source URL:
//
//	https://github.com/OWNER/REPO        GitHub (also any host in githubHosts: GHES)
//	https://HOST/PATH, file:///PATH      static mirror (http:// only to loopback)
//	oci://REGISTRY[:PORT]/REPO[:TAG]     OCI registry (one tag of it)
//	/PATH, ./PATH                        local image file
//
// It is pure: no file is opened, no name resolved.
func Parse(raw string, githubHosts ...string) (Ref, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return Ref{}, fmt.Errorf("parsing source url: empty")
	}
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
		p := filepath.Clean(s)
		return Ref{Kind: KindLocal, URL: p, Path: p}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Ref{}, fmt.Errorf("parsing source url %q: %w", raw, err)
	}
	if u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return Ref{}, fmt.Errorf("parsing source url %q: unexpected user info, query or fragment", raw)
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "http":
		if u.Host == "" {
			return Ref{}, fmt.Errorf("parsing source url %q: no host", raw)
		}
		host := strings.ToLower(u.Host)
		if strings.ToLower(u.Scheme) == "http" && !IsLoopback(u.Hostname()) {
			return Ref{}, fmt.Errorf("parsing source url %q: plain http is only allowed to loopback; use https", raw)
		}
		if isGitHubHost(host, githubHosts) {
			return parseGitHub(raw, u, host)
		}
		p := strings.TrimRight(u.EscapedPath(), "/") // "https://h//" and "https://h" are one mirror
		if strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
			return Ref{}, fmt.Errorf("parsing source url %q: \"..\" in path", raw)
		}
		return Ref{Kind: KindMirror, URL: strings.ToLower(u.Scheme) + "://" + host + p, Host: host, Path: p}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return Ref{}, fmt.Errorf("parsing source url %q: file:// URLs name a local directory (file:///PATH)", raw)
		}
		if !strings.HasPrefix(u.Path, "/") {
			return Ref{}, fmt.Errorf("parsing source url %q: want file:///ABSOLUTE/PATH", raw)
		}
		p := filepath.Clean(u.Path)
		// Escaped, so that the URL parses back to the same path (spaces
		// and '#' included; found by the fuzzer).
		return Ref{Kind: KindMirror, URL: "file://" + (&url.URL{Path: p}).EscapedPath(), Path: p}, nil
	case "oci":
		if u.Host == "" {
			return Ref{}, fmt.Errorf("parsing source url %q: want oci://REGISTRY/REPOSITORY", raw)
		}
		repo := strings.Trim(u.Path, "/")
		tag := ""
		if i := strings.LastIndex(repo, ":"); i >= 0 {
			repo, tag = repo[:i], repo[i+1:]
			if !validOCITag(tag) {
				return Ref{}, fmt.Errorf("parsing source url %q: tag %q: want letters, digits, \".\", \"_\" or \"-\", at most 128", raw, tag)
			}
		}
		if repo == "" || !validOCIRepo(repo) {
			return Ref{}, fmt.Errorf("parsing source url %q: want oci://REGISTRY/REPOSITORY (lower-case path components)", raw)
		}
		host := strings.ToLower(u.Host)
		return Ref{Kind: KindOCI, URL: "oci://" + host + "/" + repo, Host: host, Path: repo, Tag: tag}, nil
	default:
		return Ref{}, fmt.Errorf("parsing source url %q: unsupported scheme %q (want https, file, oci or a path)", raw, u.Scheme)
	}
}

func isGitHubHost(host string, extra []string) bool {
	if host == "github.com" {
		return true
	}
	for _, h := range extra {
		if strings.EqualFold(strings.TrimSpace(h), host) {
			return true
		}
	}
	return false
}

func parseGitHub(raw string, u *url.URL, host string) (Ref, error) {
	path := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), ".git")
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(parts) != 2 || !validName(parts[0]) || !validName(parts[1]) {
		return Ref{}, fmt.Errorf("parsing repository url %q: want https://%s/OWNER/REPO", raw, host)
	}
	return Ref{Kind: KindGitHub, URL: "https://" + host + "/" + parts[0] + "/" + parts[1],
		Host: host, Owner: parts[0], Repo: parts[1]}, nil
}

// validName accepts GitHub owner and repository names.
func validName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || r == '.' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// validOCIRepo checks a repository path as the distribution spec defines
// it: lower-case alphanumeric components separated by "/", with ".", "_",
// "__" or "-" runs inside a component.
func validOCIRepo(p string) bool {
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			return false
		}
		for i, r := range c {
			alnum := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
			sep := r == '.' || r == '_' || r == '-'
			if !alnum && !sep {
				return false
			}
			if sep && (i == 0 || i == len(c)-1) {
				return false
			}
		}
	}
	return true
}

// validOCITag checks a tag as the distribution spec defines it.
func validOCITag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, r := range t {
		if !(r == '_' || r == '.' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// IsLoopback reports whether host (without port) is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
