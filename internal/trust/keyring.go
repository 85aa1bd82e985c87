package trust

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/spamtagger/sysextd/internal/rootfs"
)

// Methods of signature.
const (
	MethodMinisign = "minisign"
	MethodOpenPGP  = "openpgp"
)

// scopeSuffix names a key's companion file listing the extensions it may
// sign ("*" for all), one a line.
const scopeSuffix = ".extensions"

// Key is one public key from keys.d.
type Key struct {
	// ID is minisign's key id (16 upper-case hex digits, as minisign prints
	// it) or the OpenPGP primary key fingerprint (upper-case hex).
	ID string `json:"id"`
	// Name is the key file's name without its extension ("spamtagger-2026").
	Name string `json:"name"`
	// Path is the in-root path of the key file.
	Path   string `json:"path"`
	Method string `json:"method"`
	// Vendor is true for keys from /usr/share/sysextd/keys.d.
	Vendor bool `json:"vendor"`
	// Comment is the OpenPGP primary user id, or minisign's key comment.
	Comment string `json:"comment,omitempty"`
	// Scope lists the extensions the key's NAME.extensions file names; "*"
	// is every extension. Nil when the key has no such file.
	Scope []string `json:"scope,omitempty"`

	mini minisign.PublicKey
	pgp  *openpgp.Entity
}

// String is "NAME (ID)".
func (k *Key) String() string { return k.Name + " (" + k.ID + ")" }

// scoped reports whether the key's scope file names ext.
func (k *Key) scoped(ext string) bool {
	for _, s := range k.Scope {
		if s == "*" || s == ext {
			return true
		}
	}
	return false
}

// matches reports whether ref (from a manifest's keys = [...]) names k:
// its file name, its id, or for OpenPGP the long key id (the fingerprint's
// last 16 hex digits). Case and spaces in ids do not matter.
func (k *Key) matches(ref string) bool {
	if ref == k.Name {
		return true
	}
	r := strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(ref, "0x"), "0X"), " ", ""))
	if r == k.ID {
		return true
	}
	return k.Method == MethodOpenPGP && len(r) == 16 && strings.HasSuffix(k.ID, r)
}

// Keyring is every key in the vendor and local keys.d directories.
type Keyring struct {
	Keys []*Key
	// VendorFiles are the names of the key files the vendor's keys.d
	// holds, whether they loaded, were replaced by a local file of the
	// same name or masked: the vendor's intent to sign stands either way.
	VendorFiles []string
	// VendorBroken lists the vendor key files (or the local files that
	// replace them) that could not be read or parsed, with the error:
	// every vendor entry then refuses rather than fall back to unsigned.
	VendorBroken []error
	// Now is the clock OpenPGP expiry is judged by; nil is time.Now.
	Now func() time.Time
}

func (kr *Keyring) now() time.Time {
	if kr == nil || kr.Now == nil {
		return time.Now()
	}
	return kr.Now()
}

// HasVendorKeys reports whether the vendor ships at least one key file,
// whether it loaded or not (a local file replacing it, or a broken one,
// never turns the vendor's entries unsigned).
func (kr *Keyring) HasVendorKeys() bool {
	if kr == nil {
		return false
	}
	for _, k := range kr.Keys {
		if k.Vendor {
			return true
		}
	}
	return len(kr.VendorFiles) > 0
}

// LoadKeyring reads minisign (.pub) and OpenPGP (.asc, .gpg) public keys
// from the vendor and local keys.d directories under root. A local file
// replaces the vendor file of the same name; an empty local file (or a
// symlink to /dev/null) masks it. Symlinks resolve inside root. NAME.extensions beside a key lists the
// extensions it may sign. A file that cannot be read is reported with its
// path and left out; every other key still loads. Missing directories are
// an empty keyring.
func LoadKeyring(root rootfs.Root) (*Keyring, []error) {
	var errs []error
	// Symlinks resolve inside the root; one that escapes it is an error.
	r, err := os.OpenRoot(root.Dir())
	if err != nil {
		return &Keyring{}, []error{fmt.Errorf("opening root: %w", err)}
	}
	defer r.Close()
	rel := func(p string) string { return strings.TrimPrefix(p, "/") }
	files := map[string]string{} // base name -> in-root path; local wins
	vendor := map[string]bool{}  // base names the vendor's keys.d has
	var vendorFiles []string
	for _, dir := range []string{rootfs.VendorKeysDir, rootfs.LocalKeysDir} {
		ents, err := readDir(r, rel(dir))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("reading %s: %w", dir, err))
			}
			continue
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			files[e.Name()] = filepath.Join(dir, e.Name())
			if dir == rootfs.VendorKeysDir {
				vendor[e.Name()] = true
				if ext := filepath.Ext(e.Name()); ext != scopeSuffix {
					vendorFiles = append(vendorFiles, e.Name())
				}
			}
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	kr := &Keyring{VendorFiles: vendorFiles}
	scopes := map[string][]string{}
	fail := func(n string, err error) {
		errs = append(errs, err)
		if vendor[n] {
			kr.VendorBroken = append(kr.VendorBroken, err)
		}
	}
	for _, n := range names {
		p := files[n]
		if target, err := r.Readlink(rel(p)); err == nil && target == os.DevNull {
			continue // masked
		}
		data, err := r.ReadFile(rel(p))
		if err != nil {
			fail(n, fmt.Errorf("reading key %s: %w", p, err))
			continue
		}
		ext := filepath.Ext(n)
		stem := strings.TrimSuffix(n, ext)
		if len(bytes.TrimSpace(data)) == 0 {
			continue // masked
		}
		switch ext {
		case scopeSuffix:
			scope, err := parseScope(data)
			if err != nil {
				fail(n, fmt.Errorf("%s: %w", p, err))
				continue
			}
			scopes[stem] = scope
		case ".pub":
			k, err := parseMinisignKey(data)
			if err != nil {
				fail(n, fmt.Errorf("%s: not a minisign public key: %w", p, err))
				continue
			}
			k.Name, k.Path, k.Vendor = stem, p, strings.HasPrefix(p, rootfs.VendorKeysDir+"/")
			kr.Keys = append(kr.Keys, k)
		case ".asc", ".gpg":
			ks, err := parseOpenPGPKeys(data)
			if err != nil {
				fail(n, fmt.Errorf("%s: %w", p, err))
				continue
			}
			for _, k := range ks {
				k.Name, k.Path, k.Vendor = stem, p, strings.HasPrefix(p, rootfs.VendorKeysDir+"/")
				kr.Keys = append(kr.Keys, k)
			}
		default:
			fail(n, fmt.Errorf("%s: unknown key file type (want .pub, .asc, .gpg or .extensions)", p))
		}
	}
	for _, k := range kr.Keys {
		k.Scope = scopes[k.Name]
	}
	return kr, errs
}

func readDir(r *os.Root, dir string) ([]os.DirEntry, error) {
	f, err := r.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

func parseScope(data []byte) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(l, '#'); i >= 0 {
			l = strings.TrimSpace(l[:i])
		}
		for _, f := range strings.Fields(l) {
			if f != "*" && !validExtName(f) {
				return nil, fmt.Errorf("line %d: invalid extension name %q", n, f)
			}
			out = append(out, f)
		}
	}
	return out, sc.Err()
}

func validExtName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func minisignID(id uint64) string { return fmt.Sprintf("%016X", id) }

func parseMinisignKey(data []byte) (*Key, error) {
	var pub minisign.PublicKey
	if err := pub.UnmarshalText(bytes.TrimSpace(data)); err != nil {
		return nil, err
	}
	k := &Key{ID: minisignID(pub.ID()), Method: MethodMinisign, mini: pub}
	if first, _, ok := bytes.Cut(data, []byte("\n")); ok {
		if c, ok := strings.CutPrefix(string(first), "untrusted comment: "); ok {
			k.Comment = strings.TrimSpace(c)
		}
	}
	return k, nil
}

func parseOpenPGPKeys(data []byte) ([]*Key, error) {
	var el openpgp.EntityList
	var err error
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("-----BEGIN")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(data))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("not an OpenPGP public key: %w", err)
	}
	var keys []*Key
	for _, e := range el {
		if e.PrivateKey != nil {
			return nil, errors.New("holds an OpenPGP secret key; keys.d takes public keys only")
		}
		k := &Key{ID: fmt.Sprintf("%X", e.PrimaryKey.Fingerprint), Method: MethodOpenPGP, pgp: e}
		if _, id := e.PrimarySelfSignature(); id != nil {
			k.Comment = id.Name
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no OpenPGP key in file")
	}
	return keys, nil
}

// pgpExpiry returns when e's primary key expires, if it does.
func pgpExpiry(e *openpgp.Entity) (time.Time, bool) {
	sig, _ := e.PrimarySelfSignature()
	if sig == nil || sig.KeyLifetimeSecs == nil || *sig.KeyLifetimeSecs == 0 {
		return time.Time{}, false
	}
	return e.PrimaryKey.CreationTime.Add(time.Duration(*sig.KeyLifetimeSecs) * time.Second), true
}
