#!/usr/bin/env bash
# sysextd demo: build two releases of an extension made from Debian's real
# `hello` package (the way the sysext template does), serve them from a
# local GitHub API stand-in, and let sysextctl recommend, install, update
# and remove them in a throwaway root with the real systemd-sysext, inside a
# private mount namespace (nothing on this host is touched). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (systemd-sysext mounts overlays)"; exit 1; }
export PATH=$PATH:/usr/local/go/bin

need=()
for cmd in mksquashfs:squashfs-tools systemd-sysext:systemd unshare:util-linux; do
  command -v "${cmd%%:*}" >/dev/null || need+=("${cmd#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/sysextd-demo.XXXXXX)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "building sysextctl and the release server"
CGO_ENABLED=0 go build -o "$work/bin/" ./cmd/sysextctl ./demo/releaseserver

step "building sysext-hello from Debian's hello package (two releases)"
# A fresh machine (or container) may have no package lists yet: update once.
(cd "$work" && apt-get download hello >/dev/null 2>&1) ||
  (apt-get update -qq && cd "$work" && apt-get download hello >/dev/null) ||
  { echo "demo: apt-get download hello failed (needs the Debian mirror; see /etc/apt/sources.list*)"; exit 1; }
deb=$(ls "$work"/hello_*.deb)
pkgver=$(dpkg-deb -f "$deb" Version)
arch=$(dpkg --print-architecture)
case $arch in amd64) sdarch=x86-64;; arm64) sdarch=arm64;; *) sdarch=$arch;; esac
build_release() { # TAG PACKAGE_VERSION
  local tag=$1 ver=$2 tree="$work/tree-$1" out="$work/releases/SpamTagger/sysext-hello/$1"
  mkdir -p "$tree" "$out"
  dpkg-deb -x "$deb" "$tree"
  rm -rf "$tree/etc" "$tree/var"
  mkdir -p "$tree/usr/lib/extension-release.d"
  echo "release $tag" > "$tree/usr/share/doc/hello/sysext-release"
  cat > "$tree/usr/lib/extension-release.d/extension-release.sysext-hello" <<REL
ID=debian
VERSION_ID=13
VERSION_CODENAME=trixie
NAME=sysext-hello
PACKAGE=hello
PACKAGE_VERSION=$ver
ARCH=$arch
ARCHITECTURE=$sdarch
BUILD_TIME=$(date -u +%Y-%m-%dT%H:%M:%SZ)
REPOSITORY=https://github.com/SpamTagger/sysext-hello
REL
  mksquashfs "$tree" "$out/sysext-hello_trixie_${arch}.squashfs" -all-root -noappend -quiet >/dev/null
  cp "$tree/usr/lib/extension-release.d/extension-release.sysext-hello" "$out/sysext-hello_trixie_${arch}.manifest"
  printf '{"version":"%s","package_versions":{"trixie_%s":"%s"}}\n' "$tag" "$arch" "$ver" > "$out/release.json"
}
build_release 2026.11.01-0900 "$pkgver"
ls -l "$work/releases/SpamTagger/sysext-hello/2026.11.01-0900"

step "serving the releases on loopback"
"$work/bin/releaseserver" -dir "$work/releases" -url-file "$work/url" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
api=$(cat "$work/url")
echo "GitHub API stand-in: $api"

step "a throwaway appliance root (Debian trixie) with a vendor manifest"
root="$work/root"
mkdir -p "$root/etc" "$root/usr/lib" "$root/usr/spamtagger/etc" "$root/var/lib/extensions" "$root/var/spamtagger"
printf 'ID=debian\nVERSION_ID=13\nVERSION_CODENAME=trixie\n' > "$root/usr/lib/os-release"
cp "$root/usr/lib/os-release" "$root/etc/os-release"
cat > "$root/usr/spamtagger/etc/sysext.toml" <<'TOML'
[hello]
url = "https://github.com/SpamTagger/sysext-hello"
if_file = "/var/spamtagger/hello.flag"
update = "none"
TOML
cat "$root/usr/spamtagger/etc/sysext.toml"

# Everything below runs in a private mount namespace with its own /run, as
# systemd-sysext --root needs outside a container.
export root api work
unshare --mount --propagation private bash -euo pipefail -c '
mount --make-rshared /
mount -t tmpfs tmpfs /run
ctl() { echo "\$ sysextctl $*"; "$work/bin/sysextctl" --root "$root" --github-api "$api" "$@"; }
step() { printf "\n\033[1m==> %s\033[0m\n" "$*"; }

step "before: nothing installed, hello not recommended"
ctl list
step "the flag file appears: hello is recommended; auto installs it"
touch "$root/var/spamtagger/hello.flag"
ctl explain hello
ctl auto --dry-run
ctl auto
ls -l "$root/var/lib/extensions"
step "merged by the real systemd-sysext: /usr/bin/hello now exists in the root"
ls -l "$root/usr/bin/hello"
"$root/usr/bin/hello" || echo "(hello built for another libc: present, not runnable here)"
ctl list
'

step "a new release is published"
build_release 2026.11.15-0900 "$pkgver+demo1"
kill -HUP "$server_pid"; sleep 0.5

unshare --mount --propagation private bash -euo pipefail -c '
mount --make-rshared /
mount -t tmpfs tmpfs /run
ctl() { echo "\$ sysextctl $*"; "$work/bin/sysextctl" --root "$root" --github-api "$api" "$@"; }
step() { printf "\n\033[1m==> %s\033[0m\n" "$*"; }
"$work/bin/sysextctl" --root "$root" -q list --offline >/dev/null  # (fresh namespace: nothing merged yet)
systemd-sysext --root="$root" refresh
step "update: downloaded, verified, swapped with rollback ready"
ctl update
cat "$root/usr/share/doc/hello/sysext-release"
ctl list --json
step "remove"
ctl remove hello
ls "$root/usr/bin/hello" 2>/dev/null || echo "/usr/bin/hello is gone"
ctl list
'
step "demo finished; the throwaway root and server are removed"
