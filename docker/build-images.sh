#!/usr/bin/env bash
# Build the refservers images: the shared base layer, then one image per server and the
# all-in-one image (names from `docker/generate.py --list`).
#
#   docker/build-images.sh              # everything
#   docker/build-images.sh http smtp    # the base, then only these
#
# The base layer is FROM $REFSERVERS_BASE_IMAGE if set, else python:3.11-slim when it
# is present or can be pulled, else the Debian image docker/build-base-image.sh builds
# (no registry needed). pip inside the build reaches the package index the way pip on
# this host does: index URLs and proxies are read from the host's environment and pip
# config at build time and passed as build args, never written into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
DEFAULT_BASE=python:3.11-slim
LOCAL_BASE=refservers/base-debian:bookworm
TAG=${REFSERVERS_IMAGE_TAG:-latest}
# The legacy builder works with every engine and client here (BuildKit's Dockerfile
# frontend would be pulled from a registry, and the buildx plugin may be missing).
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

say() { echo "images: $*" >&2; }

docker/engine.sh start

pick_base() {
    if [ -n "${REFSERVERS_BASE_IMAGE:-}" ]; then echo "$REFSERVERS_BASE_IMAGE"; return; fi
    if docker image inspect "$DEFAULT_BASE" >/dev/null 2>&1 || timeout 120 docker pull -q "$DEFAULT_BASE" >/dev/null 2>&1; then
        echo "$DEFAULT_BASE"; return
    fi
    if ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
        say "$DEFAULT_BASE cannot be pulled: building $LOCAL_BASE from Debian packages"
        docker/build-base-image.sh "$LOCAL_BASE" >&2
    fi
    echo "$LOCAL_BASE"
}

# pip settings the build needs, from this host: only network index URLs (file:// ones
# are host directories a build cannot see) and the standard proxy variables.
pip_config() {
    "$PYTHON" -m pip config get "global.$1" 2>/dev/null || true
}
build_args=()
add_arg() { [ -n "$2" ] && build_args+=(--build-arg "$1=$2"); return 0; }
network_urls() { tr ' ' '\n' <<<"$1" | grep -E '^https?://' | paste -sd' ' - || true; }
add_arg PIP_INDEX_URL "$(network_urls "${PIP_INDEX_URL:-$(pip_config index-url)}")"
add_arg PIP_EXTRA_INDEX_URL "$(network_urls "${PIP_EXTRA_INDEX_URL:-$(pip_config extra-index-url)}")"
add_arg PIP_TRUSTED_HOST "${PIP_TRUSTED_HOST:-$(pip_config trusted-host)}"
for var in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
    add_arg "$var" "${!var:-}"
done

# The Dockerfiles follow the registry: regenerate them so a newly landed server is built too
# (before the base layer, so both see the same registry).
"$PYTHON" docker/generate.py >&2

# docker build, quiet: its output (and the legacy builder's deprecation notice) is shown
# only when the build fails.
build() {
    local log
    log=$(mktemp)
    if ! docker build -q "$@" >"$log" 2>&1; then
        cat "$log" >&2; rm -f "$log"; say "docker build $* failed"; return 1
    fi
    rm -f "$log"
}

BASE_IMAGE=$(pick_base)
say "base layer refservers/base:$TAG FROM $BASE_IMAGE"
started=$SECONDS
# A minimal context (the package, not .venv or var/), streamed as a tar.
tar -c --exclude=__pycache__ --exclude='*.pyc' pyproject.toml README.md requirements/runtime.txt servers docker/Dockerfile.base \
    | build -f docker/Dockerfile.base --build-arg "BASE_IMAGE=$BASE_IMAGE" "${build_args[@]}" -t "refservers/base:$TAG" -
say "base layer built in $((SECONDS - started))s"

if [ $# -gt 0 ]; then names=("$@"); else mapfile -t names < <("$PYTHON" docker/generate.py --list); fi
for name in "${names[@]}"; do
    [ -f "docker/$name.Dockerfile" ] || { say "no docker/$name.Dockerfile"; exit 1; }
    build -f "docker/$name.Dockerfile" --build-arg "BASE=refservers/base:$TAG" -t "refservers/$name:$TAG" docker
    say "$(docker image ls "refservers/$name:$TAG" --format '{{.Repository}}:{{.Tag}}  {{.Size}}')"
done
