#!/usr/bin/env bash
# lci on a fresh Debian machine: installs what is missing, then runs.
#
#   bash run.sh                  the main job: `lci serve` (HTTP service on 127.0.0.1:8000)
#   bash run.sh test [ARGS]      the test suite (pytest ARGS)
#   bash run.sh <lci args>       any other `lci` command (run, sessions, files, mcp, image)
#
# What it installs, only when missing: Python dependencies into .venv, a Docker engine
# (Debian's docker.io, started in the background when no engine answers), debootstrap,
# and the sandbox image (`lci image build`, registry-free).
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
VENV=$ROOT/.venv
say() { printf '[run.sh] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
    if [ -z "${APT_UPDATED:-}" ]; then
        say "apt-get update"
        as_root apt-get update -qq
        APT_UPDATED=1
    fi
    say "installing Debian packages: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_venv() {
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        apt_install python3-venv
    fi
    local stamp="$VENV/.lci-installed" want
    want=$(sha256sum pyproject.toml | cut -c1-16)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return
    fi
    say "installing Python dependencies into .venv"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e ".[dev]"
    echo "$want" >"$stamp"
}

engine_answers() { "$VENV/bin/python" -c 'import docker; docker.from_env(timeout=5).ping()' 2>/dev/null; }

ensure_docker() {
    engine_answers && return
    if ! command -v dockerd >/dev/null; then
        apt_install docker.io iptables
    fi
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        say "starting docker with systemctl"
        as_root systemctl start docker || true
    fi
    if ! engine_answers; then
        say "starting dockerd in the background (log: /var/log/lci-dockerd.log)"
        as_root sh -c 'nohup dockerd >/var/log/lci-dockerd.log 2>&1 &'
    fi
    for _ in $(seq 1 60); do
        engine_answers && return
        sleep 1
    done
    say "the Docker engine did not come up; see /var/log/lci-dockerd.log"
    exit 1
}

ensure_image() {
    if [ -n "${LCI_IMAGE:-}" ]; then
        return  # the user runs an image of their own
    fi
    if ! "$VENV/bin/python" -c 'import docker, interpreter.image as i; docker.from_env().images.get(i.image_tag())' 2>/dev/null; then
        if ! command -v debootstrap >/dev/null; then
            apt_install debootstrap
        fi
    fi
    "$VENV/bin/lci" image build
}

ensure_browser() {
    # the web inspector's end-to-end tests drive Debian's Chromium (no browser download)
    command -v chromium >/dev/null || apt_install chromium
}

ensure_venv
ensure_docker
ensure_image
[ $# -gt 0 ] || set -- serve
case "$1" in
    test)
        shift
        ensure_browser
        exec "$VENV/bin/pytest" "$@"
        ;;
    *)
        exec "$VENV/bin/lci" "$@"
        ;;
esac
