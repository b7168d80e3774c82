#!/usr/bin/env bash
# Build a local Debian base image without any container registry: debootstrap a
# minimal bookworm (python3, python3-venv, ca-certificates) from the Debian mirror this
# host already uses, trust this host's CA bundle inside it, then `docker import` it.
#
#   docker/build-base-image.sh [TAG]        (default refservers/base-debian:bookworm)
#
# Environment: REFSERVERS_DEBIAN_MIRROR overrides the mirror read from
# /etc/apt/sources.list(.d); REFSERVERS_DEBIAN_SUITE (default bookworm);
# REFSERVERS_HOST_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt).
# Nothing host-specific (mirror, proxy) is written into the repository: it is read
# from this machine at build time and ends up only in the image.
set -euo pipefail

TAG=${1:-refservers/base-debian:bookworm}
SUITE=${REFSERVERS_DEBIAN_SUITE:-bookworm}
CA_BUNDLE=${REFSERVERS_HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
PACKAGES=python3,python3-venv,ca-certificates

die() { echo "build-base-image: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "debootstrap needs root"

# The first plain "main" Debian archive URI the host's apt uses, deb822 or one-line
# format; security and updates suites are skipped (debootstrap wants the base suite).
host_mirror() {
    local file uri
    shopt -s nullglob
    for file in /etc/apt/sources.list.d/*.sources; do
        uri=$(awk -v suite="$SUITE" '
            /^[[:space:]]*$/ { if (uris != "" && suites ~ ("(^| )" suite "( |$)") && types ~ /deb( |$)/) { print uris; exit } uris = suites = types = ""; next }
            /^URIs:/   { uris = $2 }
            /^Suites:/ { $1 = ""; suites = $0 " " }
            /^Types:/  { $1 = ""; types = $0 " " }
            END { if (uris != "" && suites ~ ("(^| )" suite "( |$)") && types ~ /deb( |$)/) print uris }
        ' "$file" | head -n1)
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$file" ] || continue
        uri=$(awk -v suite="$SUITE" '$1 == "deb" && $0 !~ /\[/ && $3 == suite { print $2; exit }
                                     $1 == "deb" && $2 ~ /^\[/ && $4 == suite { print $3; exit }' "$file")
        [ -n "$uri" ] && { echo "$uri"; return; }
    done
}

MIRROR=${REFSERVERS_DEBIAN_MIRROR:-$(host_mirror)}
[ -n "$MIRROR" ] || die "no Debian $SUITE mirror found in /etc/apt/sources.list(.d); set REFSERVERS_DEBIAN_MIRROR"
[ -f "$CA_BUNDLE" ] || die "host CA bundle $CA_BUNDLE not found"
command -v docker >/dev/null || die "docker client not found"
docker info >/dev/null 2>&1 || die "the Docker engine is not running (make images starts it)"

if ! command -v debootstrap >/dev/null; then
    echo "build-base-image: installing debootstrap"
    DEBIAN_FRONTEND=noninteractive flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

ROOT=$(mktemp -d /tmp/refservers-rootfs.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

echo "build-base-image: debootstrap $SUITE ($PACKAGES)"
# Debian's mirror may be reached through a TLS-intercepting proxy: debootstrap's
# downloads (wget) trust the host bundle through the environment.
SSL_CERT_FILE=$CA_BUNDLE debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" \
    >"$ROOT.log" 2>&1 || { tail -n 30 "$ROOT.log" >&2; rm -f "$ROOT.log"; die "debootstrap failed"; }
rm -f "$ROOT.log"

# Trust the host's CA bundle (downloads inside image builds may go through a proxy
# whose CA only the host bundle has): add it as a local CA and regenerate the bundle.
install -m 0644 "$CA_BUNDLE" "$ROOT/usr/local/share/ca-certificates/host-ca-bundle.crt"
chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || cp "$CA_BUNDLE" "$ROOT/etc/ssl/certs/ca-certificates.crt"

# Small image: no package lists, caches, docs or locales beyond C.UTF-8.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb \
       "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/var/log/*.log \
       "$ROOT"/usr/share/locale/*

echo "build-base-image: importing as $TAG"
tar -C "$ROOT" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap $SUITE minbase + $PACKAGES, host CA bundle trusted" \
    - "$TAG" >/dev/null
docker image ls "$TAG" --format 'build-base-image: {{.Repository}}:{{.Tag}} {{.Size}}'
