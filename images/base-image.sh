#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim-bookworm without a registry:
# debootstrap (minbase) Debian 12 with python3 (3.11), venv, pip and ca-certificates, then
# `docker import` it as NAME (default apt-uss-base:bookworm-py3.11). Skips the work when NAME
# already exists. Needs root (debootstrap) and a running engine (images/engine.sh start).
#
#   images/base-image.sh [NAME]      (or BASE_IMAGE_NAME=...; `make base-image`)
#
# The Debian mirror is the one this machine's apt already uses (first URIs:/deb line of its
# sources), read at run time; DEBIAN_MIRROR overrides it. ffmpeg and libsndfile1 are not baked in:
# images/Dockerfile installs them on any base (the official python image lacks them too).
set -euo pipefail

NAME=${1:-${BASE_IMAGE_NAME:-apt-uss-base:bookworm-py3.11}}
SUITE=${DEBIAN_SUITE:-bookworm}
PACKAGES=python3,python3-venv,python3-pip,ca-certificates
DOCKER=${DOCKER:-$(command -v docker || echo /usr/bin/docker)}

say() { echo "base-image: $*"; }
die() { echo "base-image: error: $*" >&2; exit 1; }

"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers; start one with 'images/engine.sh start' (make docker-up)"

if "$DOCKER" image inspect "$NAME" >/dev/null 2>&1; then
  say "$NAME exists; nothing to do (docker rmi $NAME to rebuild)"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "debootstrap needs root"

mirror() {
  local m=""
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  shopt -s nullglob
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    m=$(awk '/^[[:space:]]*URIs:/ {print $2; exit}' "$f")
    [ -n "$m" ] && { echo "$m"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI suite ...
    m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
    [ -n "$m" ] && { echo "$m"; return; }
  done
}

MIRROR=$(mirror)
[ -n "$MIRROR" ] || die "no Debian mirror found in /etc/apt/sources.list(.d); set DEBIAN_MIRROR"

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null 2>&1 || {
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null
  }
fi

t0=$SECONDS
ROOT=$(mktemp -d /tmp/apt-uss-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
say "debootstrap --variant=minbase $SUITE (python3, venv, pip, ca-certificates) from the machine's apt mirror"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || {
  tail -n 20 "$ROOT.log" >&2; die "debootstrap failed (log $ROOT.log)"
}
rm -f "$ROOT.log"

# Slim it like the official image: no apt lists, caches, docs or man pages.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/var/log/*.log \
  "$ROOT"/tmp/* "$ROOT"/root/.cache
# A container's resolver comes from the engine at run time; the host's must not travel along.
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/hostname"

say "docker import -> $NAME"
tar --numeric-owner -C "$ROOT" -c . \
  | "$DOCKER" import -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' -m "debootstrap $SUITE minbase + $PACKAGES" - "$NAME" >/dev/null

size=$("$DOCKER" image inspect --format '{{.Size}}' "$NAME")
say "built $NAME in $((SECONDS - t0))s, $((size / 1000000)) MB"
