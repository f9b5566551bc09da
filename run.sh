#!/usr/bin/env bash
# lci on a fresh Debian machine: installs what is missing, then runs.
#
#   bash run.sh                  the main job: `lci serve` (HTTP service on 127.0.0.1:8000)
#   bash run.sh test [ARGS]      the test suite (pytest ARGS)
#   bash run.sh <lci args>       any other `lci` command (run, sessions, files, mcp, image)
#
# What it installs, only when missing: Python dependencies into .venv, a Docker engine
# (Debian's docker.io, started in the background when no engine answers), debootstrap,
# and the sandbox image (`lci image build`, registry-free). With LCI_RUNTIME=runsc, and
# always for the tests: gVisor (Debian's runsc), registered with the engine as `runsc`.
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

# --host-uds=all: the kernel binds its ipc sockets in the bind-mounted socket directory, and
#   binds them again after a restart (with =create that second bind fails with EPERM);
# --oci-seccomp: apply the container's seccomp profile inside the sandbox (runsc ignores it otherwise).
RUNSC_ARGS=(--host-uds=all --network=none --oci-seccomp)

runsc_registered() {
    local want
    want=$(printf '"%s",' "${RUNSC_ARGS[@]}")
    want="{\"path\":\"$(command -v runsc)\",\"runtimeArgs\":[${want%,}]}"
    [ "$(docker info --format '{{json .Runtimes.runsc}}' 2>/dev/null)" = "$want" ]
}

reload_docker() {
    # SIGHUP: dockerd reloads daemon.json (runtimes included); running containers stay up
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ] && systemctl -q is-active docker; then
        as_root systemctl reload docker
    else
        as_root sh -c 'kill -HUP "$(cat /var/run/docker.pid)"'
    fi
}

ensure_runsc() {
    runsc_registered && return
    command -v runsc >/dev/null || apt_install runsc
    say "registering the runsc runtime in /etc/docker/daemon.json"
    local out
    if ! out=$(as_root runsc install --runtime runsc -- "${RUNSC_ARGS[@]}" 2>&1); then
        printf '%s\n' "$out" >&2
        exit 1
    fi
    reload_docker
    for _ in $(seq 1 30); do
        runsc_registered && return
        sleep 1
    done
    say "the Docker engine did not pick up the runsc runtime; see /etc/docker/daemon.json and its log"
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
if [ "${LCI_RUNTIME:-}" = runsc ] || [ "$1" = test ]; then
    ensure_runsc
fi
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
