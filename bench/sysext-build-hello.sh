#!/usr/bin/env bash
# Time `sysext-build build` of the sysext template's own metadata.json
# (hello, trixie, amd64) against a trixie base root: once with an empty
# download cache (InRelease, Packages indices and .debs fetched from the
# mirror) and three times warm (only the InRelease files are fetched).
#
#   bench/sysext-build-hello.sh [BASE_ROOTFS]   (default: the e2e base cache)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-/var/cache/sysextd-e2e/trixie-base/rootfs}
mirror=${MIRROR:-http://deb.debian.org/debian}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$tmp/sysext-build" ./cmd/sysext-build
cat > "$tmp/metadata.json" <<'JSON'
{
  "name": "sysext-hello",
  "description": "Provide the 'hello' package as extension for Bootc",
  "architectures": [ "amd64" ],
  "dists": [ "trixie" ],
  "component": "main",
  "package": "hello",
  "update": "none",
  "repository": "https://github.com/SpamTagger/sysext-template"
}
JSON
# Wall time depends on the machine's load; user+sys is the CPU the build
# itself needs (mksquashfs included).
run() {
  local TIMEFORMAT="$1	wall %R s	user %U s	sys %S s"
  time "$tmp/sysext-build" build --base "$base" --mirror "$mirror" --cache "$tmp/cache" --out "$tmp/out-$1" "$tmp/metadata.json" >/dev/null 2>&1
}
echo "sysext-build build hello (trixie amd64), base $base, mirror $mirror, load: $(cut -d' ' -f1-3 /proc/loadavg)"
run cold
for i in 1 2 3; do run "warm$i"; done
ls -l "$tmp/out-warm3"
