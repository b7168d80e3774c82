#!/usr/bin/env bash
# `make test-containers`: engine, images, compose stack up, wait for every container's
# health check, the container test suite against the published 127.0.0.1 ports, then
# tear the stack down, always, whatever failed.
#
#   docker/test-containers.sh [PYTEST ARGS...]
#       (default: -n 2 -m container_ok tests/containers tests/http tests/jsonrpc tests/dns tests/sockets tests/xmlrpc)
#
# The default runs tests/containers plus the other areas' client tests marked
# `container_ok` (pytestmark in the module): the same tests as `make test`, here handed
# the containers by the fixtures. Not every test holds there, so only the marked ones run:
# a client reaches a container through Docker's NAT, so the server sees the bridge
# gateway (172.x), not 127.0.0.1; tests of in-process log capture, of settings other than
# the container's, or of one server reaching another on 127.0.0.1 cannot pass; the mail
# and files tests share one store/root with every other test and are left out. Tests in
# a marked module that cannot hold skip with the reason.
#
# REFSERVERS_HEALTH_TIMEOUT (default 180) bounds the wait for health checks.
# REFSERVERS_SKIP_BUILD=1 reuses the images already built.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
PYTEST=${PYTEST:-.venv/bin/pytest}
PROJECT=${REFSERVERS_COMPOSE_PROJECT:-refservers}
HEALTH_TIMEOUT=${REFSERVERS_HEALTH_TIMEOUT:-180}
started=$SECONDS

say() { echo "test-containers: $*" >&2; }
die() { say "$*"; exit 1; }

docker/engine.sh start

# `docker compose` (v2 plugin) when the client has it, else Debian's docker-compose (v1).
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    if ! command -v docker-compose >/dev/null; then
        say "installing docker-compose (no compose plugin in this docker client)"
        DEBIAN_FRONTEND=noninteractive flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
    fi
    compose=(docker-compose)
fi
compose+=(-f docker/compose.yaml -p "$PROJECT")

if [ "${REFSERVERS_SKIP_BUILD:-0}" != 1 ]; then
    docker/build-images.sh
    say "images built after $((SECONDS - started))s"
fi

teardown() {
    local status=$?
    if [ "$status" != 0 ]; then
        say "failed (exit $status): logs of the stack follow"
        "${compose[@]}" logs --no-color --tail=40 >&2 || true
    fi
    say "tearing the stack down"
    "${compose[@]}" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || say "warning: compose down failed"
    say "total $((SECONDS - started))s"
    # CI leaves no daemon behind; on a workstation the engine stays up for the next run.
    if [ "${CI:-}" = true ]; then docker/engine.sh stop || true; fi
    exit "$status"
}
trap teardown EXIT

# A stack left over from an interrupted run would hold the ports.
"${compose[@]}" down --volumes --remove-orphans --timeout 5 >/dev/null 2>&1 || true
up_started=$SECONDS
"${compose[@]}" up -d --no-build
say "stack started; waiting for health checks (at most ${HEALTH_TIMEOUT}s)"

mapfile -t containers < <("${compose[@]}" ps -q)
[ "${#containers[@]}" -gt 0 ] || die "compose started no containers"
deadline=$((SECONDS + HEALTH_TIMEOUT))
while :; do
    pending=()
    for id in "${containers[@]}"; do
        status=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}} {{.Name}}' "$id")
        case "$status" in
            "running healthy "*) ;;
            "running starting "*) pending+=("${status##* }") ;;
            *) docker logs --tail 40 "$id" >&2 || true; die "container not healthy: $status" ;;
        esac
    done
    [ "${#pending[@]}" -eq 0 ] && break
    [ "$SECONDS" -lt "$deadline" ] || die "still starting after ${HEALTH_TIMEOUT}s: ${pending[*]}"
    sleep 1  # poll interval; Docker runs the health checks themselves every 10s
done
say "all ${#containers[@]} containers healthy $((SECONDS - up_started))s after compose up"

set -a
# shellcheck source=docker/targets.env
. docker/targets.env
set +a
export REFSERVERS_COMPOSE_PROJECT=$PROJECT
if [ $# -eq 0 ]; then set -- -n 2 -m container_ok tests/containers tests/http tests/jsonrpc tests/dns tests/sockets tests/xmlrpc; fi
"$PYTEST" -p no:randomly "$@"
