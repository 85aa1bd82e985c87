package imagetest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Host is the os-release of the host an image is tried on.
type Host struct {
	ID, IDLike, VersionID, SysextLevel string
}

// Trixie is the e2e container's own os-release.
var Trixie = Host{ID: "debian", VersionID: "13"}

// OSRelease renders h as an /etc/os-release file.
func (h Host) OSRelease() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "PRETTY_NAME=\"agreement test host\"\nNAME=%q\nID=%s\n", h.ID, h.ID)
	for k, v := range map[string]string{"ID_LIKE": h.IDLike, "VERSION_ID": h.VersionID, "SYSEXT_LEVEL": h.SysextLevel} {
		if v != "" {
			fmt.Fprintf(&b, "%s=%q\n", k, v)
		}
	}
	return []byte(b.String())
}

// Case is one crafted image with the verdict systemd-sysext 257 gives it
// on Host, as a booted trixie system (e2e/agree_test.go checks every
// verdict against the real systemd).
type Case struct {
	// Name is the image name: the file is Name + ".raw" and its own
	// release file extension-release.<Name>.
	Name   string
	Host   Host
	Format string   // "" (squashfs), "erofs", "garbage", "truncated"
	Comp   string   // squashfs or erofs compressor, "" for the default
	Args   []string // more mksquashfs or mkfs.erofs options
	Files  []File
	// Merge: systemd-sysext 257 merges the image.
	Merge bool
	// Ours: a check of sysextd's own that systemd does not make, so
	// sysextd refuses an image systemd would merge (the template's ARCH).
	Ours bool
	// NeedsDissect: our reader mounts it with systemd-dissect (root).
	NeedsDissect bool
}

// Marker is a file every case image carries, so a merge is seen in /usr.
func (c Case) Marker() string { return "usr/lib/sysextd-agree/" + c.Name }

// FileName is the image's file name in /var/lib/extensions.
func (c Case) FileName() string { return c.Name + ".raw" }

const relDir = "usr/lib/extension-release.d/"

// rel is the image's own release file with content s.
func rel(name, s string) File { return File{Path: relDir + "extension-release." + name, Data: s} }

// good is a release file systemd accepts on trixie.
func good() string {
	_, sd := Arch()
	return "ID=debian\nVERSION_ID=13\nARCHITECTURE=" + sd + "\n"
}

// Cases returns the agreement table: every case of issue 10 and more.
func Cases() []Case {
	deb, sd := Arch()
	other := "arm64"
	if sd == "arm64" {
		other = "x86-64"
	}
	spam := Host{ID: "spamtagger", IDLike: "debian", VersionID: "13"}
	level := Host{ID: "debian", VersionID: "13", SysextLevel: "1.0"}
	c := func(name string, merge bool, content string, extra ...File) Case {
		return Case{Name: name, Merge: merge, Files: append([]File{rel(name, content)}, extra...)}
	}
	withHost := func(h Host, k Case) Case { k.Host = h; return k }
	withFormat := func(format, comp string, k Case, args ...string) Case {
		k.Format, k.Comp, k.Args = format, comp, args
		return k
	}
	dissect := func(k Case) Case { k.NeedsDissect = true; return k }
	strict := func(name, content, v string) File {
		f := rel(name, content)
		f.Xattr = map[string]string{"user.extension-release.strict": v}
		return f
	}
	cases := []Case{
		// Compression and format.
		c("fmt-gzip", true, good()),
		withFormat("", "xz", c("fmt-xz", true, good())),
		withFormat("", "zstd", c("fmt-zstd", true, good())),
		withFormat("", "lzo", c("fmt-lzo", true, good())),
		withFormat("", "lz4", c("fmt-lz4", true, good())),
		withFormat("", "lzma", c("fmt-lzma", false, good())),
		withFormat("erofs", "", c("fmt-erofs", true, good())),
		dissect(withFormat("erofs", "lz4", c("fmt-erofs-lz4", true, good()))),
		withFormat("", "xz", c("fmt-xz-bcj", true, good(), File{Path: "usr/share/pad", Data: noise(64 << 10)}), "-Xbcj", "x86"),
		withFormat("", "zstd", c("fmt-zstd-19", true, good()), "-Xcompression-level", "19"),
		withFormat("", "lz4", c("fmt-lz4-hc", true, good()), "-Xhc"),
		withFormat("", "", c("fmt-uncompressed", true, good()), "-noI", "-noD", "-noF", "-noX"),
		withFormat("", "", c("fmt-block-4k", true, good(), File{Path: "usr/share/pad", Data: noise(64 << 10)}), "-b", "4096"),
		withFormat("", "", c("fmt-no-xattrs", true, good()), "-no-xattrs"),
		dissect(withFormat("erofs", "lz4hc", c("fmt-erofs-lz4hc", true, good()))),
		{Name: "fmt-erofs-strict-0", Format: "erofs", Merge: true, Files: []File{strict("renamed", good(), "0")}},
		withFormat("gpt-usr", "", c("gpt-usr", true, good())),
		withFormat("gpt-root", "", c("gpt-root", true, good())),
		withFormat("gpt-usr", "", c("gpt-usr-os-release", false, good(), File{Path: "usr/lib/os-release", Data: "ID=debian\n"})),
		withFormat("gpt-verity", "", c("gpt-verity", true, good())),
		withFormat("gpt-usr", "", c("gpt-usr-wrong-id", false, "ID=fedora\nVERSION_ID=13\n")),
		withFormat("garbage", "", c("fmt-garbage", false, good())),
		withFormat("truncated", "", c("fmt-truncated", false, good(), File{Path: "usr/share/pad", Data: noise(256 << 10)})),

		// Which release file.
		{Name: "rel-none", Merge: false, Files: []File{{Path: "usr/bin/x", Data: "x"}}},
		c("rel-empty", false, ""),
		c("rel-only-comments", false, "# ID=debian\n; VERSION_ID=13\n"),
		{Name: "rel-other-name", Merge: false, Files: []File{rel("something-else", good())}},
		c("rel-second-file", true, good(), rel("rel-second-file-old", "ID=fedora\n")),
		{Name: "rel-symlink-abs", Merge: true, Files: []File{
			{Path: relDir + "extension-release.rel-symlink-abs", Link: "/usr/share/agree/release"},
			{Path: "usr/share/agree/release", Data: good()}}},
		{Name: "rel-symlink-rel", Merge: true, Files: []File{
			{Path: relDir + "extension-release.rel-symlink-rel", Link: "../../share/agree/release"},
			{Path: "usr/share/agree/release", Data: good()}}},
		{Name: "rel-symlink-dangling", Merge: false, Files: []File{
			{Path: relDir + "extension-release.rel-symlink-dangling", Link: "/usr/share/agree/nope"}}},
		{Name: "rel-is-dir", Merge: false, Files: []File{{Path: relDir + "extension-release.rel-is-dir", Dir: true},
			{Path: relDir + "extension-release.rel-is-dir/x", Data: good()}}},
		{Name: "strict-0-other-name", Merge: true, Files: []File{strict("renamed", good(), "0")}},
		{Name: "strict-no-other-name", Merge: true, Files: []File{strict("renamed", good(), "no")}},
		{Name: "strict-1-other-name", Merge: false, Files: []File{strict("renamed", good(), "1")}},
		{Name: "strict-junk-other-name", Merge: false, Files: []File{strict("renamed", good(), "maybe")}},
		{Name: "strict-0-two-files", Merge: false, Files: []File{strict("a", good(), "0"), strict("b", good(), "0")}},
		{Name: "strict-0-own-wins", Merge: false, Files: []File{rel("strict-0-own-wins", "ID=fedora\n"), strict("renamed", good(), "0")}},

		// Syntax (systemd's env-file parser).
		c("syn-semicolon-comment", true, "; a comment\n"+good()),
		c("syn-hash-comment-indented", true, "   # a comment\n"+good()),
		c("syn-line-without-equals", true, "just words\n"+good()+"more words\n"),
		c("syn-key-with-dash", true, good()+"X-VENDOR-KEY=1\n"),
		c("syn-continuation", true, "ID=deb\\\nian\nVERSION_ID=1\\\n3\n"),
		c("syn-double-quotes", true, "ID=\"debian\"\nVERSION_ID=\"13\"\n"),
		c("syn-single-quotes", true, "ID='debian'\nVERSION_ID='13'\n"),
		c("syn-concatenated-quotes", true, "ID=\"deb\"'ian'\nVERSION_ID=\"1\"3\n"),
		c("syn-quote-inside-unquoted", false, "ID=debian\nVERSION_ID=1\"3\"\n"),
		c("syn-trailing-blanks", true, "ID=debian   \nVERSION_ID = 13\t\n"),
		c("syn-quoted-trailing-blank", false, "ID=\"debian \"\nVERSION_ID=13\n"),
		c("syn-crlf", true, "ID=debian\r\nVERSION_ID=13\r\n"),
		c("syn-later-wins", true, "ID=fedora\nVERSION_ID=40\nID=debian\nVERSION_ID=13\n"),
		c("syn-bom-first-line-id", false, "\uFEFFID=debian\nVERSION_ID=13\n"),
		c("syn-bom-first-line-other", true, "\uFEFFNAME=x\nID=debian\nVERSION_ID=13\n"),
		c("syn-invalid-utf8-value", false, good()+"NAME=caf\xe9\n"),
		c("syn-invalid-utf8-comment", true, "# caf\xe9\n"+good()),
		c("syn-noncharacter", false, good()+"NAME=\xef\xbf\xbe\n"),
		c("syn-comment-continuation", true, "# comment \\\nID=debian\nVERSION_ID=13\n"),
		c("syn-export-prefix", false, "export ID=debian\nexport VERSION_ID=13\n"),
		c("syn-nul-after", false, good()+"\x00ID=fedora\n"),
		c("syn-escaped-space", false, "ID=debian\\ \nVERSION_ID=13\n"),

		// ID, ID_LIKE, VERSION_ID, SYSEXT_LEVEL.
		c("id-ubuntu", false, "ID=ubuntu\nVERSION_ID=13\n"),
		c("id-missing", false, "VERSION_ID=13\n"),
		c("id-empty", false, "ID=\nVERSION_ID=13\n"),
		c("id-any", true, "ID=_any\nVERSION_ID=99\n"),
		c("id-case", false, "ID=Debian\nVERSION_ID=13\n"),
		c("ver-12", false, "ID=debian\nVERSION_ID=12\n"),
		c("ver-missing", false, "ID=debian\n"),
		c("ver-13.1", false, "ID=debian\nVERSION_ID=13.1\n"),
		withHost(spam, c("idlike-debian", true, "ID=debian\nVERSION_ID=13\n")),
		withHost(spam, c("idlike-own-id", true, "ID=spamtagger\nVERSION_ID=13\n")),
		withHost(Host{ID: "spamtagger", IDLike: "ubuntu debian", VersionID: "13"}, c("idlike-second-word", true, "ID=debian\nVERSION_ID=13\n")),
		withHost(Host{ID: "spamtagger", IDLike: "ubuntu", VersionID: "13"}, c("idlike-no-match", false, "ID=debian\nVERSION_ID=13\n")),
		withHost(level, c("level-match", true, "ID=debian\nVERSION_ID=12\nSYSEXT_LEVEL=1.0\n")),
		withHost(level, c("level-mismatch", false, "ID=debian\nVERSION_ID=13\nSYSEXT_LEVEL=2\n")),
		withHost(level, c("level-image-none", true, "ID=debian\nVERSION_ID=13\n")),
		c("level-host-none", false, "ID=debian\nSYSEXT_LEVEL=1.0\n"),
		withHost(Host{ID: "debian"}, c("rolling-host", true, "ID=debian\n")),
		// A testing host (forky before release) has no VERSION_ID: any
		// VERSION_ID of the image is accepted, the ID still must match.
		withHost(Host{ID: "debian"}, c("rolling-host-image-14", true, "ID=debian\nVERSION_ID=14\nVERSION_CODENAME=forky\n")),
		withHost(Host{ID: "debian"}, c("rolling-host-image-13", true, "ID=debian\nVERSION_ID=13\n")),
		withHost(Host{ID: "debian"}, c("rolling-host-other-id", false, "ID=ubuntu\nVERSION_ID=14\n")),
		withHost(Host{ID: "debian", SysextLevel: "1.0"}, c("level-only-host", true, "ID=debian\n")),

		c("syn-key-repeated-empty", false, good()+"ID=\n"),
		c("syn-version-quoted-blank", false, "ID=debian\nVERSION_ID=\" 13\"\n"),
		c("syn-tabs", true, "\tID\t=\tdebian\t\nVERSION_ID=13\n"),
		c("syn-big-release", true, strings.Repeat("# padding padding padding padding padding padding\n", 20000)+good()),
		c("unit-huge", true, good(), File{Path: "usr/lib/systemd/system/huge.service", Data: "[Service]\nExecStart=/bin/true\n" + strings.Repeat("# x\n", 400000)}),
		{Name: "rel-dir-symlink", Merge: true, Files: []File{
			{Path: "usr/lib/extension-release.d", Link: "../share/agree-rel"},
			{Path: "usr/share/agree-rel/extension-release.rel-dir-symlink", Data: good()}}},
		c("os-release-dir", false, good(), File{Path: "usr/lib/os-release/x", Data: "x"}),

		// ARCHITECTURE, SYSEXT_SCOPE, and ours.
		c("arch-underscore", false, "ID=debian\nVERSION_ID=13\nARCHITECTURE="+strings.ReplaceAll(sd, "-", "_")+"\n"),
		c("arch-upper-case", false, "ID=debian\nVERSION_ID=13\nARCHITECTURE="+strings.ToUpper(sd)+"\n"),
		c("scope-blanks", true, good()+"SYSEXT_SCOPE=\"  portable   system \"\n"),
		c("arch-other", false, "ID=debian\nVERSION_ID=13\nARCHITECTURE="+other+"\n"),
		c("arch-any", true, "ID=debian\nVERSION_ID=13\nARCHITECTURE=_any\n"),
		c("arch-empty", true, "ID=debian\nVERSION_ID=13\nARCHITECTURE=\n"),
		c("arch-any-id-any", false, "ID=_any\nARCHITECTURE="+other+"\n"),
		c("scope-initrd", false, good()+"SYSEXT_SCOPE=initrd\n"),
		c("scope-portable", false, good()+"SYSEXT_SCOPE=portable\n"),
		c("scope-initrd-system", true, good()+"SYSEXT_SCOPE=\"initrd system\"\n"),
		c("scope-empty", false, good()+"SYSEXT_SCOPE=\n"),
		{Name: "ours-debian-arch", Merge: true, Ours: true, Files: []File{rel("ours-debian-arch", good()+"ARCH="+map[bool]string{true: "arm64", false: "amd64"}[deb != "arm64"]+"\n")}},
		c("ours-debian-arch-ok", true, good()+"ARCH="+deb+"\n"),

		// Content systemd refuses or ignores.
		c("os-release-file", false, good(), File{Path: "usr/lib/os-release", Data: "ID=debian\n"}),
		c("os-release-symlink-dangling", true, good(), File{Path: "usr/lib/os-release", Link: "../../etc/os-release"}),
		c("os-release-symlink", false, good(), File{Path: "usr/lib/os-release", Link: "os-release.real"}, File{Path: "usr/lib/os-release.real", Data: "ID=debian\n"}),
		c("etc-os-release", true, good(), File{Path: "etc/os-release", Data: "ID=fedora\n"}),
		c("top-level-etc-var", true, good(), File{Path: "etc/x.conf", Data: "x"}, File{Path: "var/lib/x", Data: "x"}),
		c("opt-only-payload", true, good(), File{Path: "opt/agree/x", Data: "x"}),
	}
	for i := range cases {
		cases[i].Files = append(cases[i].Files, File{Path: cases[i].Marker(), Data: cases[i].Name + "\n"})
		if cases[i].Host == (Host{}) {
			cases[i].Host = Trixie
		}
	}
	return cases
}

// noise returns n incompressible, reproducible bytes.
func noise(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return string(b)
}
