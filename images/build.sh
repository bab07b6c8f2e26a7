#!/usr/bin/env bash
# Build one apt-uss image from images/Dockerfile: images/build.sh NAME:TAG BASE_IMAGE
# (what `make images` runs, once per image). From the repository root's point of view it
#  1. checks the base image is here (or can be pulled), else fails naming `make base-image`;
#  2. stages the optional inputs into the git-ignored build/images/ of the context:
#     EXTRA_CA_CERTS_DIR/*.crt -> build/images/ca-certificates/ (empty when unset)
#     WHEELS_DIR/*.whl that requirements.lock pins (e.g. the CPU torch) -> build/images/wheels/
#  3. runs a BuildKit build with --network host (cached between runs).
# Environment: DOCKER (client; Debian's /usr/bin/docker has BuildKit built in), EXTRA_CA_CERTS_DIR,
# WHEELS_DIR, BUILD_ARGS (extra `docker build` arguments).
set -euo pipefail

NAME=${1:?usage: images/build.sh NAME:TAG BASE_IMAGE}
BASE=${2:?usage: images/build.sh NAME:TAG BASE_IMAGE}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
STAGE=$ROOT/build/images

say() { echo "images: $*"; }
die() { echo "images: error: $*" >&2; exit 1; }

"$DOCKER" info >/dev/null 2>&1 || die "no Docker engine answers; start one with 'make docker-up' (images/engine.sh start)"

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
  say "base image $BASE is not here; trying to pull it"
  "$DOCKER" pull -q "$BASE" >/dev/null 2>&1 \
    || die "base image $BASE is not here and cannot be pulled: build a local one with 'make base-image' and pass BASE_IMAGE=apt-uss-base:bookworm-py3.11 (GPU_BASE_IMAGE= likewise)"
fi

# Mirror SRC's matching files into DST: unchanged files stay untouched, stale ones go.
sync_files() {
  local dst=$1; shift
  mkdir -p "$dst"
  local keep=() f name
  for f in "$@"; do
    name=${f##*/}
    keep+=("$name")
    cmp -s "$f" "$dst/$name" || cp "$f" "$dst/$name"
  done
  for f in "$dst"/*; do
    [ -e "$f" ] || continue
    name=${f##*/}
    [[ " ${keep[*]:-} " == *" $name "* ]] || rm -rf "$f"
  done
}

shopt -s nullglob
certs=()
if [ -n "${EXTRA_CA_CERTS_DIR:-}" ]; then
  [ -d "$EXTRA_CA_CERTS_DIR" ] || die "EXTRA_CA_CERTS_DIR=$EXTRA_CA_CERTS_DIR is not a folder"
  certs=("$EXTRA_CA_CERTS_DIR"/*.crt)
  [ ${#certs[@]} -gt 0 ] || die "EXTRA_CA_CERTS_DIR=$EXTRA_CA_CERTS_DIR has no *.crt files"
fi
sync_files "$STAGE/ca-certificates" "${certs[@]}"

# Only wheels of exactly the locked versions (a local label such as +cpu aside) are staged.
norm() { tr '[:upper:]_.' '[:lower:]--'; }
pins=$(sed 's/[[:space:]]*#.*//; /==/!d; s/[[:space:]]//g' "$ROOT/requirements.lock" \
  | awk -F'==' '{ n = $1; gsub(/[_.]/, "-", n); print tolower(n) "==" $2 }')
wheels=()
if [ -n "${WHEELS_DIR:-}" ]; then
  for dir in $WHEELS_DIR; do          # a find-links setting may list several folders
    dir=${dir#file://}
    [ -d "$dir" ] || continue
    for w in "$dir"/*.whl; do
      name=${w##*/}; dist=${name%%-*}; version=${name#*-}; version=${version%%-*}
      pin="$(norm <<<"$dist")==${version%%+*}"
      if grep -qxF "$pin" <<<"$pins"; then wheels+=("$w"); fi
    done
  done
fi
sync_files "$STAGE/wheels" "${wheels[@]}"

say "building $NAME from $BASE (extra CA certs: ${#certs[@]}, staged wheels: ${#wheels[@]}${wheels:+: ${wheels[*]##*/}})"
t0=$(date +%s%N)
# The commit the image is built from (+dirty with uncommitted changes to tracked files): runs record it.
commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
if [ "$commit" != unknown ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit+dirty"
fi
# shellcheck disable=SC2086
DOCKER_BUILDKIT=1 "$DOCKER" build --network host -f "$ROOT/images/Dockerfile" \
  --build-arg BASE_IMAGE="$BASE" --build-arg APT_USS_GIT_COMMIT="$commit" --build-arg APT_USS_STEP_IMAGE="$NAME" \
  -t "$NAME" ${BUILD_ARGS:-} "$ROOT" || {
  # pip's "No matching distribution" is what a proxy's unknown CA looks like from inside the build.
  [ ${#certs[@]} -gt 0 ] || say "if apt or pip could not reach its index through a TLS-intercepting proxy," \
    "pass EXTRA_CA_CERTS_DIR=<folder of its *.crt> (here: /usr/local/share/ca-certificates)"
  die "building $NAME failed (output above)"
}
t1=$(date +%s%N)
size=$("$DOCKER" image inspect --format '{{.Size}}' "$NAME")
say "built $NAME in $(( (t1 - t0) / 1000000000 )).$(( (t1 - t0) / 100000000 % 10 ))s, $((size / 1000000)) MB"
