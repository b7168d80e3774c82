#!/usr/bin/env bash
# Size of every image and the seconds from `docker run` to Docker reporting it healthy,
# one container at a time (nothing else of ours running), as a Markdown table.
#
#   docker/measure-images.sh [NAME...]
#
# Two timings: with the image's own HEALTHCHECK (first check 10s after start, so
# "healthy" can't show earlier) and with `--health-interval 1s`, which is close to
# how long the server takes to start and pass `refservers check`. Then the time
# `docker stop` takes (SIGTERM; exit 0 means the server stopped itself, 137 a SIGKILL).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
docker/engine.sh start

if [ $# -gt 0 ]; then names=("$@"); else mapfile -t names < <("$PYTHON" docker/generate.py --list); fi

seconds_to_healthy() {
    local start container status
    start=$(date +%s.%N)
    container=$(docker run -d "$@")
    status=starting
    for _ in $(seq 1 600); do
        status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$container")
        [ "$status" = starting ] || break
        sleep 0.1  # poll interval of this measurement
    done
    local end
    end=$(date +%s.%N)
    STOP_SECONDS=-
    if [ "$status" = healthy ]; then
        local stop_start stop_end
        stop_start=$(date +%s.%N)
        docker stop --time 20 "$container" >/dev/null
        stop_end=$(date +%s.%N)
        STOP_SECONDS=$(awk -v a="$stop_start" -v b="$stop_end" 'BEGIN { printf "%.2f", b - a }')
        STOP_SECONDS="${STOP_SECONDS}s (exit $(docker inspect -f '{{.State.ExitCode}}' "$container"))"
    fi
    docker rm -f "$container" >/dev/null
    [ "$status" = healthy ] || { echo "$status"; return; }
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }'
}

echo "| image | size | run -> healthy (image HEALTHCHECK) | run -> healthy (--health-interval 1s) | docker stop (SIGTERM) |"
echo "|---|---|---|---|---|"
for name in "${names[@]}"; do
    image=refservers/$name:latest
    size=$(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1000000 }')
    default=$(seconds_to_healthy "$image")
    seconds_to_healthy --health-interval 1s "$image" >/tmp/refservers-measure.$$
    fast=$(cat /tmp/refservers-measure.$$)
    rm -f /tmp/refservers-measure.$$
    echo "| $name | $size | ${default}s | ${fast}s | $STOP_SECONDS |"
done
