// Package fakearchive serves a small Debian archive over httptest for
// tests: real .deb files (ar + gzip tar), Packages indices, and InRelease
// files clearsigned with a key made for the test, in the layout of
// deb.debian.org (dists/SUITE/InRelease, pool/...).
package fakearchive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Pkg is one binary package of the archive.
type Pkg struct {
	Name, Version                             string
	Arch                                      string // default "amd64"; "all" for arch-independent
	Suite                                     string // e.g. "trixie" or "trixie-security"
	Source                                    string // "name (version)" as in Packages, optional
	Depends, PreDepends, Recommends, Provides string
	Priority                                  string
	// Files maps a path ("usr/bin/hello") to its content; a value
	// starting with "->" makes a symlink to the rest.
	Files    map[string]string
	Modes    map[string]int64 // per-path mode (default 0644, 0755 under bin/)
	Postinst string
	Triggers string // the control member "triggers", e.g. "interest /usr/share/mime/packages"
}

// Archive is a served archive.
type Archive struct {
	URL     string
	Keyring openpgp.EntityList
	Dir     string
	srv     *httptest.Server
}

var (
	keyOnce sync.Once
	key     *openpgp.Entity
	keyErr  error
)

// Key is the signing key shared by every archive of the test binary.
func Key(t testing.TB) *openpgp.Entity {
	keyOnce.Do(func() {
		key, keyErr = openpgp.NewEntity("fakearchive", "test", "archive@example.invalid", nil)
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return key
}

// New writes pkgs as an archive and serves it until the test ends.
// Components are always "main".
func New(t testing.TB, pkgs []Pkg) *Archive {
	t.Helper()
	dir := t.TempDir()
	a := &Archive{Dir: dir, Keyring: openpgp.EntityList{Key(t)}}
	bySuiteArch := map[string]map[string][]string{} // suite -> arch -> stanzas
	archs := map[string]bool{}
	for _, p := range pkgs {
		if p.Arch == "" {
			p.Arch = "amd64"
		}
		if p.Arch != "all" {
			archs[p.Arch] = true
		}
	}
	if len(archs) == 0 {
		archs["amd64"] = true
	}
	for _, p := range pkgs {
		if p.Arch == "" {
			p.Arch = "amd64"
		}
		deb := buildDeb(t, p)
		fn := fmt.Sprintf("pool/main/%s/%s/%s_%s_%s.deb", p.Name[:1], p.Name, p.Name, strings.ReplaceAll(p.Version, ":", "%3a"), p.Arch)
		write(t, filepath.Join(dir, fn), deb)
		sum := sha256.Sum256(deb)
		var s strings.Builder
		fmt.Fprintf(&s, "Package: %s\nVersion: %s\nArchitecture: %s\n", p.Name, p.Version, p.Arch)
		for _, kv := range [][2]string{{"Source", p.Source}, {"Priority", p.Priority}, {"Pre-Depends", p.PreDepends},
			{"Depends", p.Depends}, {"Recommends", p.Recommends}, {"Provides", p.Provides}} {
			if kv[1] != "" {
				fmt.Fprintf(&s, "%s: %s\n", kv[0], kv[1])
			}
		}
		fmt.Fprintf(&s, "Description: %s\n test package\n .\n more text\nFilename: %s\nSize: %d\nSHA256: %s\n",
			p.Name, fn, len(deb), hex.EncodeToString(sum[:]))
		if bySuiteArch[p.Suite] == nil {
			bySuiteArch[p.Suite] = map[string][]string{}
		}
		for arch := range archs {
			if p.Arch == arch || p.Arch == "all" {
				bySuiteArch[p.Suite][arch] = append(bySuiteArch[p.Suite][arch], s.String())
			}
		}
	}
	for suite, perArch := range bySuiteArch {
		var rel strings.Builder
		fmt.Fprintf(&rel, "Origin: Debian\nSuite: %s\nCodename: %s\nDate: %s\nValid-Until: %s\nComponents: main\nSHA256:\n",
			suite, suite, time.Now().UTC().Format(time.RFC1123), time.Now().Add(7*24*time.Hour).UTC().Format(time.RFC1123))
		var names []string
		for arch := range archs {
			names = append(names, arch)
		}
		sort.Strings(names)
		for _, arch := range names {
			plain := []byte(strings.Join(perArch[arch], "\n"))
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(plain)
			zw.Close()
			for ext, data := range map[string][]byte{"": plain, ".gz": gz.Bytes()} {
				rp := "main/binary-" + arch + "/Packages" + ext
				write(t, filepath.Join(dir, "dists", suite, rp), data)
				sum := sha256.Sum256(data)
				fmt.Fprintf(&rel, " %s %d %s\n", hex.EncodeToString(sum[:]), len(data), rp)
			}
		}
		var signed bytes.Buffer
		w, err := clearsign.Encode(&signed, Key(t).PrivateKey, nil)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(rel.String()))
		w.Close()
		write(t, filepath.Join(dir, "dists", suite, "InRelease"), signed.Bytes())
	}
	a.srv = httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(a.srv.Close)
	a.URL = a.srv.URL
	return a
}

func write(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// buildDeb makes a .deb (format 2.0, gzip members).
func buildDeb(t testing.TB, p Pkg) []byte {
	t.Helper()
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: t <t@example.invalid>\nDescription: %s\n test\n", p.Name, p.Version, p.Arch, p.Name)
	ctl := map[string]tarFile{"./control": {data: control, mode: 0o644}}
	if p.Postinst != "" {
		ctl["./postinst"] = tarFile{data: p.Postinst, mode: 0o755}
	}
	if p.Triggers != "" {
		ctl["./triggers"] = tarFile{data: p.Triggers, mode: 0o644}
	}
	data := map[string]tarFile{}
	for path, content := range p.Files {
		mode := int64(0o644)
		if strings.Contains(path, "bin/") {
			mode = 0o755
		}
		if m, ok := p.Modes[path]; ok {
			mode = m
		}
		data["./"+path] = tarFile{data: content, mode: mode}
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	arMember(&ar, "debian-binary", []byte("2.0\n"))
	arMember(&ar, "control.tar.gz", tarGz(t, ctl))
	arMember(&ar, "data.tar.gz", tarGz(t, data))
	return ar.Bytes()
}

type tarFile struct {
	data string
	mode int64
}

func tarGz(t testing.TB, files map[string]tarFile) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	mtime := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	dirs := map[string]bool{}
	var names []string
	for n := range files {
		names = append(names, n)
		for d := filepath.Dir(n); d != "." && d != "/"; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	var dl []string
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	sort.Strings(names)
	hdr := func(h *tar.Header) {
		h.Uname, h.Gname, h.ModTime = "root", "root", mtime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	hdr(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755})
	for _, d := range dl {
		hdr(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	}
	for _, n := range names {
		f := files[n]
		if target, ok := strings.CutPrefix(f.data, "->"); ok {
			hdr(&tar.Header{Name: n, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777})
			continue
		}
		hdr(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: f.mode, Size: int64(len(f.data))})
		tw.Write([]byte(f.data))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func arMember(w *bytes.Buffer, name string, data []byte) {
	fmt.Fprintf(w, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", name, 0, 0, 0, 0o644, len(data))
	w.Write(data)
	if len(data)%2 == 1 {
		w.WriteByte('\n')
	}
}

// KeyringFile writes the archive's public key as a binary keyring (like
// debian-archive-keyring.gpg) and returns its path.
func (a *Archive) KeyringFile(t testing.TB) string {
	t.Helper()
	var b bytes.Buffer
	if err := Key(t).Serialize(&b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "keyring.gpg")
	write(t, p, b.Bytes())
	return p
}
