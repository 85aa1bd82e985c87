#!/usr/bin/env bash
# build-deb.sh VERSION: build dist/sysextd_<debversion>_<arch>.deb from this
# repository (what `make deb` runs).
#
# build-deb.sh --deb-version VERSION only prints the Debian version.
#
# VERSION is what `git describe --tags --always --dirty` prints; it is baked
# into the binaries as is and turned into a valid Debian version for the
# package (see deb_version). Steps: build sysextctl and sysextd (static,
# -trimpath) into packaging/build/bin, generate man pages and completions
# with packaging/gendocs, gzip the pages, write the doc files, then run nfpm.
#
# Environment: GOARCH (target, default the host's), DEB_MAINTAINER (default
# from git config), SOURCE_DATE_EPOCH (default the last commit's time, so
# that two builds of one commit are identical), GO (default go).
set -euo pipefail

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
MODULE=github.com/spamtagger/sysextd

die() { echo "build-deb.sh: $*" >&2; exit 1; }

usage="usage: build-deb.sh VERSION | build-deb.sh --deb-version VERSION"
[ $# -ge 1 ] || die "$usage"

# deb_version turns a git describe into a Debian version that sorts right:
#   v1.2.3 / 1.2.3          -> 1.2.3
#   v1.2.3-4-gabc1234       -> 1.2.3+git4.abc1234    (after 1.2.3)
#   abc1234 (no tag yet)    -> 0.0.0~gitabc1234      (before any release)
#   ...-dirty               -> ...+dirty (or .dirty after a +)
#   anything else (dev)     -> 0.0.0~<it, cleaned>
deb_version() {
	local v=$1 dirty="" out
	if [[ $v == *-dirty ]]; then
		dirty=1
		v=${v%-dirty}
	fi
	v=${v#v}
	if [[ $v =~ ^([0-9][0-9A-Za-z.~]*)-([0-9]+)-g([0-9a-f]+)$ ]]; then
		out="${BASH_REMATCH[1]}+git${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
	elif [[ $v =~ ^[0-9a-f]{7,40}$ ]] && ! git rev-parse -q --verify "refs/tags/${1%-dirty}" >/dev/null 2>&1 &&
		! git rev-parse -q --verify "refs/tags/v$v" >/dev/null 2>&1; then
		# An abbreviated commit (git describe --always without a tag),
		# even one that starts with a digit, unless a tag has that name.
		out="0.0.0~git$v"
	elif [[ $v =~ ^[0-9][0-9A-Za-z.+~]*$ ]]; then
		out=$v
	else
		out="0.0.0~$(printf '%s' "$v" | tr -c 'A-Za-z0-9.+~' '.')"
	fi
	if [ -n "$dirty" ]; then
		if [[ $out == *+* ]]; then out="$out.dirty"; else out="$out+dirty"; fi
	fi
	printf '%s\n' "$out"
}

deb_arch() {
	case $1 in
	amd64 | arm64 | riscv64 | s390x) echo "$1" ;;
	arm) echo armhf ;;
	386) echo i386 ;;
	ppc64le) echo ppc64el ;;
	*) die "no Debian architecture for GOARCH=$1" ;;
	esac
}


# --deb-version VERSION prints the Debian version and stops (for tests).
if [ "$1" = --deb-version ]; then
	[ $# -eq 2 ] || die "$usage"
	deb_version "$2"
	exit 0
fi
[ $# -eq 1 ] || die "$usage"
raw_version=$1
cd "$(dirname "$0")/.."
GO=${GO:-go}

[ -f cmd/sysextctl/main.go ] || die "cmd/sysextctl is missing"
[ -f cmd/sysextd/main.go ] || die "cmd/sysextd is missing: the daemon has not been written yet, so there is nothing to package"

DEB_VERSION=$(deb_version "$raw_version")
if command -v dpkg >/dev/null 2>&1; then
	dpkg --validate-version "$DEB_VERSION" || die "made an invalid Debian version $DEB_VERSION from $raw_version"
fi
goarch=${GOARCH:-$($GO env GOARCH)}
DEB_ARCH=$(deb_arch "$goarch")
if [ -z "${DEB_MAINTAINER:-}" ]; then
	name=$(git config user.name 2>/dev/null || true)
	email=$(git config user.email 2>/dev/null || true)
	DEB_MAINTAINER="${name:-sysextd maintainers} <${email:-sysextd@localhost}>"
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
# The licence of sysext.pl, which this replaces; LICENSE holds its text.
DEB_LICENSE=${DEB_LICENSE:-"GPL-3.0-or-later"}
export DEB_VERSION DEB_ARCH DEB_MAINTAINER DEB_LICENSE SOURCE_DATE_EPOCH

build=packaging/build
rm -rf "$build"
mkdir -p "$build/bin" "$build/doc" dist

ldflags="-s -w -X $MODULE/internal/buildinfo.Version=$raw_version"
echo "building sysextctl and sysextd $raw_version for $goarch"
CGO_ENABLED=0 GOOS=linux GOARCH=$goarch $GO build -trimpath -ldflags "$ldflags" -o "$build/bin/" ./cmd/sysextctl ./cmd/sysextd

echo "generating man pages and completions"
# gendocs runs on the build host, so no GOARCH here.
GOARCH= $GO run -ldflags "-X $MODULE/internal/buildinfo.Version=$raw_version" ./packaging/gendocs "$build"
gzip -9n "$build"/man/*.8 "$build"/man/*.5

date_rfc2822=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
cat >"$build/doc/changelog" <<EOF
sysextd ($DEB_VERSION) unstable; urgency=medium

  * Built from git $raw_version.

 -- $DEB_MAINTAINER  $date_rfc2822
EOF
gzip -9n "$build/doc/changelog"
cat >"$build/doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sysextd
Source: https://github.com/spamtagger/sysextd

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) SpamTagger contributors
License: GPL-3.0+
 This program is free software: you can redistribute it and/or modify
 it under the terms of the GNU General Public License as published by
 the Free Software Foundation, either version 3 of the License, or
 (at your option) any later version.
 .
 This program is distributed in the hope that it will be useful,
 but WITHOUT ANY WARRANTY; without even the implied warranty of
 MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
 GNU General Public License for more details.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 3 can be found in "/usr/share/common-licenses/GPL-3".
EOF

pkg="dist/sysextd_${DEB_VERSION}_${DEB_ARCH}.deb"
rm -f "$pkg"
echo "packaging $pkg"
$GO run "$NFPM" pkg --packager deb --config packaging/nfpm.yaml --target "$pkg"
echo "$pkg"
