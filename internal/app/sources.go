package app

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/spamtagger/sysextd/internal/engine"
	"github.com/spamtagger/sysextd/internal/image"
	"github.com/spamtagger/sysextd/internal/manifest"
	"github.com/spamtagger/sysextd/internal/rootfs"
	"github.com/spamtagger/sysextd/internal/source"
	"github.com/spamtagger/sysextd/internal/sourceref"
)

// Sources is the part of sysextd.toml that says where releases come from;
// sysextd and sysextctl read the same keys.
type Sources struct {
	// GitHubEnterprise lists GitHub Enterprise Server hosts
	// ("ghe.example.com"): manifest URLs on them are GitHub repositories,
	// served by https://HOST/api/v3/.
	GitHubEnterprise []string `toml:"github_enterprise"`
	// Mirrors are tried, in order, after each entry's own url and mirrors
	// (before them with MirrorsFirst).
	Mirrors      []string `toml:"mirrors"`
	MirrorsFirst bool     `toml:"mirrors_first"`
	// RequireDigest refuses assets without a published digest.
	RequireDigest bool `toml:"require_digest"`
	// Signature is the signature policy of entries that set none
	// (docs/trust.md).
	Signature string `toml:"signature"`
	// Insecure lists OCI registries (host:port) reached over plain HTTP:
	// LAN registries only, each use logged as a warning.
	Insecure []string `toml:"insecure"`
	// Probation is how long the units of a change are watched ("0s":
	// never); ProbationRestarts how many automatic restarts they may take
	// (engine/probation.go). Manifest entries may set their own probation.
	Probation         *manifest.Duration `toml:"probation"`
	ProbationRestarts *int               `toml:"probation_restarts"`
	// BootTries is how many starts of sysextd may find a change
	// unconfirmed before it is undone (engine/boot.go); 0 is the default.
	BootTries int `toml:"boot_tries"`
	// Auth holds the static mirrors' logins (LoadAuth); not a key of
	// sysextd.toml.
	Auth *source.Auth `toml:"-"`
	// Logins holds the OCI registries' logins (LoadRegistryLogins).
	Logins *source.RegistryLogins `toml:"-"`
}

// Logins are the static mirrors' logins (auth.conf) and the OCI
// registries' (auth.json).
type Logins struct {
	Mirrors    *source.Auth
	Registries *source.RegistryLogins
}

// LoadLogins reads both kinds of login under root (LoadAuth,
// LoadRegistryLogins). Warnings are about files others may read; the
// error joins both readings' errors.
func LoadLogins(root rootfs.Root, getenv func(string) string, user bool) (Logins, []string, error) {
	a, w, err := LoadAuth(root)
	l, lw, lerr := LoadRegistryLogins(root, getenv, user)
	return Logins{Mirrors: a, Registries: l}, append(w, lw...), errors.Join(err, lerr)
}

// SetLogins makes s use l.
func (s *Sources) SetLogins(l Logins) { s.Auth, s.Logins = l.Mirrors, l.Registries }

// LoadRegistryLogins reads the OCI registry logins
// (source.RegistryLoginFiles): /etc/sysextd/auth.json under root first.
func LoadRegistryLogins(root rootfs.Root, getenv func(string) string, user bool) (*source.RegistryLogins, []string, error) {
	return source.LoadRegistryLogins(source.RegistryLoginFiles(root.Path(rootfs.RegistryAuth), getenv, user))
}

// LoadAuth reads the mirror logins under root: auth.conf, then
// auth.conf.d/*.conf. Warnings are about files others may read.
func LoadAuth(root rootfs.Root) (*source.Auth, []string, error) {
	return source.LoadAuth([]string{root.Path(rootfs.AuthConfig)}, []string{root.Path(rootfs.AuthConfigDir)})
}

// ProbationConfig is the engine's reading of the probation keys.
func (s Sources) ProbationConfig() engine.ProbationConfig {
	var c engine.ProbationConfig
	if s.Probation != nil {
		c.Window, c.Off = s.Probation.Duration, s.Probation.Duration == 0
	}
	c.BootTries = s.BootTries
	if s.ProbationRestarts != nil {
		c.MaxRestarts = *s.ProbationRestarts
		if c.MaxRestarts == 0 {
			c.MaxRestarts = -1 // none allowed
		}
	}
	return c
}

// Check validates the URLs and hosts.
func (s Sources) Check() error {
	if s.BootTries < 0 {
		return fmt.Errorf("boot_tries: want 1 or more, got %d", s.BootTries)
	}
	if s.ProbationRestarts != nil && *s.ProbationRestarts < 0 {
		return fmt.Errorf("probation_restarts: want 0 or more, got %d", *s.ProbationRestarts)
	}
	for _, m := range s.Mirrors {
		if _, err := sourceref.Parse(m); err != nil {
			return fmt.Errorf("mirrors: %w", err)
		}
	}
	for _, h := range s.Insecure {
		if u, err := url.Parse("http://" + h); h == "" || err != nil || u.Host != h || u.Port() == "" {
			return fmt.Errorf("insecure: %q is not HOST:PORT", h)
		}
	}
	for _, h := range s.GitHubEnterprise {
		if u, err := url.Parse("https://" + h); h == "" || err != nil || u.Host != h {
			return fmt.Errorf("github_enterprise: %q is not a host name", h)
		}
	}
	return nil
}

// LoadSources reads the source keys of sysextd.toml under root, ignoring
// the daemon's other keys; a missing file is the default.
func LoadSources(root rootfs.Root) (Sources, error) {
	var s Sources
	data, err := os.ReadFile(root.Path(rootfs.DaemonConfig))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("reading %s: %w", rootfs.DaemonConfig, err)
	}
	if err := toml.NewDecoder(bytes.NewReader(data)).Decode(&s); err != nil {
		return Sources{}, fmt.Errorf("%s: %w", rootfs.DaemonConfig, err)
	}
	if err := s.Check(); err != nil {
		return Sources{}, fmt.Errorf("%s: %w", rootfs.DaemonConfig, err)
	}
	return s, nil
}

// newRouter registers every source kind: GitHub (github.com through
// cfg.GitHubAPI, each GHES host through its /api/v3/), static mirrors,
// OCI registries, local files.
func newRouter(cfg Config, log *slog.Logger) (*source.Router, error) {
	// A cache whose directory leads out of the root through a symlink
	// is not used at all (every write below it resolves inside it).
	cacheDir, err := cfg.Root.Contain(rootfs.CacheDir)
	if err != nil {
		log.Warn("not caching release data: " + err.Error())
		cacheDir = ""
	}
	gh, err := source.NewGitHub(source.GitHubOptions{APIBase: cfg.GitHubAPI, Token: cfg.Token, CacheDir: cacheDir,
		MaxSize: cfg.MaxSize, Logger: log, Progress: cfg.Progress, OnProgress: cfg.OnProgress, RequireDigest: cfg.Sources.RequireDigest})
	if err != nil {
		return nil, fmt.Errorf("configuring the GitHub source: %w", err)
	}
	r := &source.Router{
		GitHub:       map[string]source.Provider{"github.com": gh},
		Kinds:        map[sourceref.Kind]source.Provider{},
		Mirrors:      cfg.Sources.Mirrors,
		MirrorsFirst: cfg.Sources.MirrorsFirst,
		Log:          log,
	}
	for _, h := range cfg.Sources.GitHubEnterprise {
		host := strings.ToLower(strings.TrimSpace(h))
		api := "https://" + host + "/api/v3/"
		if cfg.EnterpriseAPI != nil {
			if a, ok := cfg.EnterpriseAPI[host]; ok {
				api = a
			}
		}
		g, err := source.NewGitHub(source.GitHubOptions{APIBase: api, Enterprise: true, Hosts: []string{host}, Token: cfg.Token,
			CacheDir: cacheDir, MaxSize: cfg.MaxSize, Logger: log, Progress: cfg.Progress, OnProgress: cfg.OnProgress, RequireDigest: cfg.Sources.RequireDigest})
		if err != nil {
			return nil, fmt.Errorf("configuring GitHub Enterprise %s: %w", host, err)
		}
		r.GitHub[host] = g
	}
	httpOpts := source.HTTPOptions{MaxSize: cfg.MaxSize, RequireDigest: cfg.Sources.RequireDigest, Tee: source.ProgressTee(cfg.Progress, cfg.OnProgress)}
	mirrorOpts := httpOpts
	mirrorOpts.Auth = cfg.Sources.Auth // registries log in their own way (docs/sources.md)
	r.Kinds[sourceref.KindMirror] = source.NewMirror(mirrorOpts, cacheDir)
	r.Kinds[sourceref.KindLocal] = source.NewLocal(inspectFields, cfg.MaxSize)
	r.Kinds[sourceref.KindOCI] = source.NewOCI(httpOpts, source.OCIConfig{Logins: cfg.Sources.Logins, Insecure: cfg.Sources.Insecure,
		Warn: func(msg string) { log.Warn(msg) }}, cacheDir)
	return r, nil
}

// inspectFields reads an image's extension-release without mounting it.
func inspectFields(p string) (map[string]string, error) {
	info, err := image.Inspect(p)
	if err != nil {
		return nil, err
	}
	if info.Name == "" {
		return nil, fmt.Errorf("want exactly one extension-release file, found %d", len(info.ReleaseNames))
	}
	return info.Fields, nil
}
