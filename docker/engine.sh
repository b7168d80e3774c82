#!/usr/bin/env bash
# Make sure a Docker engine answers `docker info`, installing and starting one if needed.
#
#   docker/engine.sh start   # no-op when an engine already answers
#   docker/engine.sh stop    # stops dockerd only if this script started it
#
# A dockerd started here runs in the background (its own session, output to a log
# file, never the caller's pipes) with a pidfile, and `start` returns once `docker info`
# answers, or fails loudly with the end of the log after REFSERVERS_DOCKERD_TIMEOUT
# seconds (default 60). It never passes silently: callers rely on the exit code.
set -euo pipefail

STATE_DIR=${REFSERVERS_DOCKER_STATE:-/tmp/refservers-docker}
PIDFILE=$STATE_DIR/dockerd.pid
LOG=$STATE_DIR/dockerd.log
TIMEOUT=${REFSERVERS_DOCKERD_TIMEOUT:-60}

say() { echo "engine: $*" >&2; }
die() { say "$*"; exit 1; }

apt_install() {
    [ "$(id -u)" = 0 ] || die "need root to install $* (apt-get)"
    say "installing $*"
    export DEBIAN_FRONTEND=noninteractive
    if ! flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends "$@" >"$STATE_DIR/apt.log" 2>&1; then
        flock /tmp/apt.lock apt-get update -qq >>"$STATE_DIR/apt.log" 2>&1 || true
        flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends "$@" >>"$STATE_DIR/apt.log" 2>&1 \
            || { tail -n 20 "$STATE_DIR/apt.log" >&2; die "apt-get install $* failed"; }
    fi
}

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

start() {
    mkdir -p "$STATE_DIR"
    command -v docker >/dev/null && engine_answers && return 0
    # docker.io brings dockerd, containerd, runc and a client; iptables for the bridge.
    command -v dockerd >/dev/null || apt_install docker.io iptables
    command -v docker >/dev/null || die "docker client missing after installing docker.io"
    engine_answers && return 0
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        say "dockerd (pid $(cat "$PIDFILE")) is running but not answering yet"
    else
        rm -f "$PIDFILE"
        say "starting dockerd (log: $LOG)"
        setsid dockerd --pidfile "$PIDFILE" </dev/null >"$LOG" 2>&1 &
        echo $! >"$STATE_DIR/started-by-refservers"
    fi
    local deadline=$((SECONDS + TIMEOUT))
    until engine_answers; do
        if [ -f "$STATE_DIR/started-by-refservers" ] && ! kill -0 "$(cat "$STATE_DIR/started-by-refservers")" 2>/dev/null; then
            tail -n 30 "$LOG" >&2 || true
            die "dockerd exited during start-up (see $LOG)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$LOG" >&2 || true
            die "dockerd did not answer within ${TIMEOUT}s (see $LOG)"
        fi
        sleep 0.5  # poll interval while dockerd initialises; the deadline bounds it
    done
    say "dockerd ready ($(docker info --format '{{.ServerVersion}} {{.Driver}}'))"
}

stop() {
    [ -f "$STATE_DIR/started-by-refservers" ] || { say "dockerd was not started by this script: left running"; return 0; }
    local pid
    pid=$(cat "$STATE_DIR/started-by-refservers")
    rm -f "$STATE_DIR/started-by-refservers"
    kill -0 "$pid" 2>/dev/null || return 0
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid"
    local deadline=$((SECONDS + 30))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { say "dockerd still running after 30s; killing it"; kill -KILL "$pid"; break; }
        sleep 0.2  # poll interval while dockerd shuts containers down
    done
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop" ;;
esac
