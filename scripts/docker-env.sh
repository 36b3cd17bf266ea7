#!/usr/bin/env bash
# Private Docker engine + base image + local registry for the test suite and CI.
#
#   bash scripts/docker-env.sh start|stop|status|env
#
# Everything lives under a state dir (default: ${TMPDIR:-/tmp}/weave-nb-docker,
# override with WEAVE_DOCKER_STATE). Nothing outside it is touched except the
# Debian packages it installs and the bridge/iptables rules dockerd creates.
#
# Callers:   eval "$(bash scripts/docker-env.sh start)"   # or `env` once started
# exports:   DOCKER_HOST=unix://STATE/docker.sock  WEAVE_TEST_REGISTRY=127.0.0.1:PORT
#
# Knobs (all optional):
#   WEAVE_DOCKER_STATE        state dir
#   WEAVE_REGISTRY_PORT       preferred registry port (default 5000; another free one if taken)
#   WEAVE_DOCKERD_FLAGS       extra flags appended to dockerd's command line
#   WEAVE_DOCKER_SELFTEST=0   skip the port-publishing and push/pull checks on start
# shellcheck disable=SC2016  # single-quoted code runs in a child shell / mmdebstrap hook
set -euo pipefail

STATE="${WEAVE_DOCKER_STATE:-${TMPDIR:-/tmp}/weave-nb-docker}"
DOCKERD=/usr/sbin/dockerd          # Debian's engine (docker.io)
DOCKER=/usr/bin/docker             # Debian's CLI, matches the engine's API
REGISTRY_BIN=/usr/bin/docker-registry
BASE_IMAGE="python:3.12-slim"
PACKAGES=(docker.io docker-registry mmdebstrap ca-certificates)

SOCK="$STATE/docker.sock"
DOCKERD_PID="$STATE/dockerd.pid"
DOCKERD_LOG="$STATE/dockerd.log"
DATA_ROOT="$STATE/data"
EXEC_ROOT="$STATE/exec"
DRIVER_FILE="$STATE/storage-driver"
REG_DIR="$STATE/registry"
REG_PID="$STATE/registry.pid"
REG_LOG="$STATE/registry.log"
REG_PORT_FILE="$STATE/registry.port"
REG_CONFIG="$REG_DIR/config.yml"
CACHE_DIR="$STATE/cache"
BUILD_LOG="$STATE/base-image.log"
ENV_FILE="$STATE/env"

log() { printf '[docker-env] %s\n' "$*" >&2; }

# die MESSAGE [LOGFILE]: explain what failed, show the log tail, exit 1.
die() {
    printf '[docker-env] ERROR: %s\n' "$1" >&2
    if [[ -n "${2:-}" && -f "$2" ]]; then
        printf '[docker-env] --- last lines of %s ---\n' "$2" >&2
        tail -n 25 "$2" >&2 || true
        printf '[docker-env] ---\n' >&2
    fi
    exit 1
}

dk() { "$DOCKER" -H "unix://$SOCK" "$@"; }

# pid_alive PIDFILE PATTERN: pid file names a live process whose command line
# contains PATTERN (guards against a recycled pid).
pid_alive() {
    local f="$1" pat="$2" pid
    [[ -f "$f" ]] || return 1
    pid="$(tr -dc '0-9' <"$f")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    local cmd
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmd" == *"$pat"* ]]
}

dockerd_up() { pid_alive "$DOCKERD_PID" "$SOCK" && dk info >/dev/null 2>&1; }

# http_status PORT PATH: HTTP status code of GET 127.0.0.1:PORT/PATH (bash only).
http_status() {
    local port="$1" path="$2" line
    line="$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$1" >&3
        head -n 1 <&3' "$port" "$path" 2>/dev/null)" || return 1
    line="${line#* }"
    printf '%s\n' "${line%% *}"
}

port_in_use() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$1" 2>/dev/null; }

registry_port() { [[ -f "$REG_PORT_FILE" ]] && tr -dc '0-9' <"$REG_PORT_FILE"; }

registry_up() {
    local port
    port="$(registry_port)" || return 1
    pid_alive "$REG_PID" "$REG_CONFIG" && [[ "$(http_status "$port" /v2/)" == 200 ]]
}

base_image_recipe() {
    dk image inspect --format "{{index .Config.Labels \"$RECIPE_LABEL\"}}" "$BASE_IMAGE" 2>/dev/null
}
# Present and made by the current recipe.
image_present() { [[ "$(base_image_recipe || true)" == "$(recipe_id)" ]]; }

write_env() {
    local port
    port="$(registry_port)"
    umask 022
    cat >"$ENV_FILE.tmp" <<EOF
export DOCKER_HOST=unix://$SOCK
export WEAVE_TEST_REGISTRY=127.0.0.1:$port
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# ---------------------------------------------------------------- packages --

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        # "triggers-*": configured, only another apt run's triggers outstanding.
        # (No `dpkg -s | grep -q`: with pipefail, grep's early exit can fail it.)
        case "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" in
            "install ok installed" | "install ok triggers-pending" | "install ok triggers-awaited") ;;
            *) missing+=("$p") ;;
        esac
    done
    if ((${#missing[@]})); then
        [[ "$(id -u)" == 0 ]] || die "packages missing (${missing[*]}) and not root: install them with apt-get"
        local alog="$STATE/apt.log"
        log "installing ${missing[*]} (log: $alog)"
        export DEBIAN_FRONTEND=noninteractive
        # Wait (up to 10 min) for another apt/dpkg run instead of failing on its lock.
        local lock=(-o DPkg::Lock::Timeout=600)
        # Try with the current package lists first; refresh them only if needed.
        if ! apt-get "${lock[@]}" install -y --no-install-recommends "${missing[@]}" >"$alog" 2>&1; then
            log "install failed with current package lists; running apt-get update"
            apt-get "${lock[@]}" update >>"$alog" 2>&1 || die "apt-get update failed" "$alog"
            apt-get "${lock[@]}" install -y --no-install-recommends "${missing[@]}" >>"$alog" 2>&1 \
                || die "apt-get install ${missing[*]} failed" "$alog"
        fi
    fi
    for p in "$DOCKERD" "$DOCKER" "$REGISTRY_BIN"; do
        [[ -x "$p" ]] || die "$p missing after installing ${PACKAGES[*]}"
    done
    command -v mmdebstrap >/dev/null || die "mmdebstrap missing after install"
}

# ------------------------------------------------------------------ dockerd --

# try_dockerd DRIVER [EXTRA FLAGS...]: start dockerd, return 0 once it answers.
try_dockerd() {
    local driver="$1"; shift
    local pid i from
    from=$(($(stat -c %s "$DOCKERD_LOG" 2>/dev/null || echo 0) + 1))
    rm -f "$SOCK" "$DOCKERD_PID"
    {
        printf '\n=== %s dockerd --storage-driver %s %s\n' "$(date -u +%FT%TZ)" "$driver" "$*"
    } >>"$DOCKERD_LOG"
    # shellcheck disable=SC2086
    setsid "$DOCKERD" \
        --host "unix://$SOCK" \
        --data-root "$DATA_ROOT" \
        --exec-root "$EXEC_ROOT" \
        --pidfile "$DOCKERD_PID" \
        --storage-driver "$driver" \
        --shutdown-timeout 5 \
        "$@" ${WEAVE_DOCKERD_FLAGS:-} \
        </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
    pid=$!   # setsid execs in place: this is dockerd's pid (dockerd writes its pid file itself)
    for ((i = 0; i < 120; i++)); do          # up to ~60 s
        if ! kill -0 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
            # Show why, from this attempt's part of the log.
            tail -c "+$from" "$DOCKERD_LOG" | grep -E 'level=(error|fatal)|^Status:|^failed' \
                | tail -n 2 | sed 's/^/[docker-env]   /' >&2 || true
            return 1
        fi
        if dk info >/dev/null 2>&1; then
            echo "$pid" >"$DOCKERD_PID"
            return 0
        fi
        sleep 0.5
    done
    log "dockerd did not answer within 60 s; stopping it"
    stop_pid "$pid" dockerd 20 || true
    return 1
}

start_dockerd() {
    if dockerd_up; then return 0; fi
    if pid_alive "$DOCKERD_PID" "$SOCK"; then
        # Running but not answering: restart it.
        stop_pid "$(cat "$DOCKERD_PID")" dockerd 30 || die "could not stop unresponsive dockerd" "$DOCKERD_LOG"
    fi
    mkdir -p "$DATA_ROOT" "$EXEC_ROOT"
    # Order of attempts: the driver that worked last time, then overlay2, then
    # vfs; each with iptables, then without (docker-proxy still publishes ports).
    local drivers=() d net
    [[ -f "$DRIVER_FILE" ]] && drivers+=("$(cat "$DRIVER_FILE")")
    for d in overlay2 vfs; do [[ " ${drivers[*]-} " == *" $d "* ]] || drivers+=("$d"); done
    for d in "${drivers[@]}"; do
        for net in "" "--iptables=false"; do
            log "starting dockerd (storage driver $d${net:+, $net})"
            # shellcheck disable=SC2086
            if try_dockerd "$d" $net; then
                echo "$d" >"$DRIVER_FILE"
                echo "$net" >"$STATE/dockerd.netflags"
                return 0
            fi
            log "dockerd failed with storage driver $d${net:+ $net}"
        done
    done
    rm -f "$DOCKERD_PID" "$SOCK"
    die "dockerd did not start with any storage driver (overlay2, vfs)" "$DOCKERD_LOG"
}

# ------------------------------------------------------------- base image --

# How the base image is made. Its hash (with the host's extra CA certs) names
# the cached rootfs and labels the image, so a changed recipe rebuilds both.
HOST_CA_DIR=/usr/local/share/ca-certificates
# shellcheck disable=SC2054  # the commas are mmdebstrap's package list
MMDEBSTRAP_ARGS=(
    --variant=minbase
    --include=python3,ca-certificates,passwd
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --customize-hook='mkdir -p "$1/usr/local/bin" && ln -sf /usr/bin/python3 "$1/usr/local/bin/python"'
    # Trust the same extra CAs as the host (e.g. a TLS-intercepting proxy),
    # added the Debian way so a later update-ca-certificates keeps them.
    --customize-hook="if [ -d $HOST_CA_DIR ] && [ -n \"\$(ls -A $HOST_CA_DIR)\" ]; then mkdir -p \"\$1$HOST_CA_DIR\" && cp -rL $HOST_CA_DIR/. \"\$1$HOST_CA_DIR/\" && chroot \"\$1\" update-ca-certificates; fi"
    --customize-hook='test -s "$1/etc/ssl/certs/ca-certificates.crt" && test -x "$1/usr/sbin/useradd" && test -x "$1/usr/bin/python3"'
    bookworm
)
IMPORT_CHANGES=(
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change 'ENV LANG=C.UTF-8'
    --change 'CMD ["python3"]'
)
RECIPE_LABEL=weave-nb.base-recipe

recipe_id() {
    {
        printf '%s\n' "${MMDEBSTRAP_ARGS[@]}" "${IMPORT_CHANGES[@]}"
        if [[ -d "$HOST_CA_DIR" ]]; then
            find -L "$HOST_CA_DIR" -type f -print0 | sort -z | xargs -0r cat
        fi
    } | sha256sum | cut -c1-12
}

build_rootfs() {
    local tar="$1" tmp="${1%.tar}.partial.tar"   # mmdebstrap picks the format from ".tar"
    mkdir -p "$CACHE_DIR"
    log "building $BASE_IMAGE rootfs with mmdebstrap (log: $BUILD_LOG)"
    rm -rf "$tmp"
    # stdin from /dev/null: mmdebstrap uses its default Debian mirror for the suite.
    if ! mmdebstrap "${MMDEBSTRAP_ARGS[@]}" "$tmp" </dev/null >"$BUILD_LOG" 2>&1; then
        rm -rf "$tmp"
        die "mmdebstrap failed to build the $BASE_IMAGE rootfs" "$BUILD_LOG"
    fi
    mv "$tmp" "$tar"
    # Drop rootfs tarballs of older recipes.
    find "$CACHE_DIR" -maxdepth 1 -name 'python-3.12-slim-rootfs*.tar' ! -path "$tar" -delete
}

ensure_base_image() {
    local id have
    id="$(recipe_id)"
    have="$(base_image_recipe || true)"
    [[ "$have" == "$id" ]] && return 0
    [[ -n "$have" ]] && log "$BASE_IMAGE was made by another recipe ($have); rebuilding as $id"
    local t0=$SECONDS tar="$CACHE_DIR/python-3.12-slim-rootfs-$id.tar"
    [[ -s "$tar" ]] || build_rootfs "$tar"
    local old_id
    old_id="$(dk image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)"
    log "importing $BASE_IMAGE from $tar"
    dk import "${IMPORT_CHANGES[@]}" --change "LABEL $RECIPE_LABEL=$id" \
        --message "weave-nb test base (Debian bookworm minbase + python3)" \
        "$tar" "$BASE_IMAGE" >>"$BUILD_LOG" 2>&1 \
        || die "docker import of $BASE_IMAGE failed" "$BUILD_LOG"
    dk run --rm "$BASE_IMAGE" sh -c 'python --version && command -v useradd' >>"$BUILD_LOG" 2>&1 \
        || die "$BASE_IMAGE was imported but python/useradd do not run in it" "$BUILD_LOG"
    # The previous image is now untagged; drop it unless something still uses it.
    if [[ -n "$old_id" ]]; then dk rmi "$old_id" >/dev/null 2>&1 || true; fi
    log "base image ready in $((SECONDS - t0)) s"
}

# --------------------------------------------------------------- registry --

pick_registry_port() {
    local want="${WEAVE_REGISTRY_PORT:-5000}" saved p
    saved="$(registry_port 2>/dev/null || true)"
    for p in "$want" $saved; do
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    for ((p = 5001; p < 5200; p++)); do
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    return 1
}

write_registry_config() {
    local port="$1"
    mkdir -p "$REG_DIR/data"
    cat >"$REG_CONFIG" <<EOF
# written by scripts/docker-env.sh
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

start_registry() {
    registry_up && return 0
    if pid_alive "$REG_PID" "$REG_CONFIG"; then
        stop_pid "$(cat "$REG_PID")" registry 15 || die "could not stop unresponsive registry" "$REG_LOG"
    fi
    local attempt port pid i
    for ((attempt = 0; attempt < 3; attempt++)); do
        port="$(pick_registry_port)" || die "no free port for the registry (tried ${WEAVE_REGISTRY_PORT:-5000}, 5001-5199)"
        write_registry_config "$port"
        echo "$port" >"$REG_PORT_FILE"
        printf '\n=== %s docker-registry on 127.0.0.1:%s\n' "$(date -u +%FT%TZ)" "$port" >>"$REG_LOG"
        setsid "$REGISTRY_BIN" serve "$REG_CONFIG" </dev/null >>"$REG_LOG" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$REG_PID"
        for ((i = 0; i < 60; i++)); do       # up to ~30 s
            kill -0 "$pid" 2>/dev/null || break
            if [[ "$(http_status "$port" /v2/ || true)" == 200 ]]; then
                log "registry up on 127.0.0.1:$port"
                return 0
            fi
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then stop_pid "$pid" registry 10 || true; fi
        log "registry did not come up on port $port; retrying"
    done
    rm -f "$REG_PID"
    die "docker-registry did not answer GET /v2/ with 200" "$REG_LOG"
}

# -------------------------------------------------------------- self tests --

selftest_ports() {
    local cid hostport i code=""
    cid="$(dk run -d --init --label weave-nb-selftest=1 -p 127.0.0.1:0:8080 "$BASE_IMAGE" \
        python3 -m http.server 8080 2>>"$DOCKERD_LOG")" \
        || die "could not run a container with -p 127.0.0.1:0:8080" "$DOCKERD_LOG"
    hostport="$(dk port "$cid" 8080/tcp | sed -n 's/^127\.0\.0\.1:\([0-9]*\)$/\1/p;T;q')"
    for ((i = 0; i < 40; i++)); do
        [[ -n "$hostport" ]] && code="$(http_status "$hostport" / || true)"
        [[ "$code" == 200 ]] && break
        sleep 0.25
    done
    local logs
    logs="$(dk logs "$cid" 2>&1 | tail -n 10 || true)"
    dk rm -f "$cid" >/dev/null 2>&1 || true
    if [[ "$code" != 200 ]]; then
        printf '%s\n' "$logs" >&2
        die "published port 127.0.0.1:${hostport:-?} -> 8080 of a container is not reachable from the host" "$DOCKERD_LOG"
    fi
    log "port publishing ok (127.0.0.1:$hostport -> container:8080)"
}

selftest_registry() {
    local reg ref digest out="$STATE/selftest.log"
    reg="127.0.0.1:$(registry_port)"
    ref="$reg/weave-nb-selftest/base:1"
    : >"$out"
    dk tag "$BASE_IMAGE" "$ref" >>"$out" 2>&1 || die "docker tag $ref failed" "$out"
    dk push "$ref" >>"$out" 2>&1 || die "docker push $ref failed" "$out"
    digest="$(dk image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" \
        | awk -v p="$reg/weave-nb-selftest/base@" 'index($0, p) == 1 && !d { d = $0 } END { print d }')"
    [[ -n "$digest" ]] || die "push of $ref gave no repo digest" "$out"
    dk rmi "$ref" >>"$out" 2>&1 || true
    dk pull "$digest" >>"$out" 2>&1 || die "docker pull $digest failed" "$out"
    dk rmi "$digest" >>"$out" 2>&1 || true
    log "registry push/pull ok ($digest)"
}

# -------------------------------------------------------------------- stop --

# stop_pid PID NAME TIMEOUT_S: SIGTERM, wait (bounded), then SIGKILL.
stop_pid() {
    local pid="$1" name="$2" secs="$3" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 4; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    log "$name (pid $pid) still running after ${secs} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.25
    done
    return 1
}

# Engine processes left behind (containerd, shims, docker-proxy, ...) whose
# command line names this state dir; listed by pid, never matched by name alone.
leftover_pids() {
    local p cmd exe
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        exe="$(readlink "/proc/$p/exe" 2>/dev/null)" || continue
        case "${exe##*/}" in
            dockerd | containerd | containerd-shim* | docker-proxy | runc | docker-registry) ;;
            *) continue ;;
        esac
        cmd="$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" || continue
        [[ "$cmd" == *"$STATE/"* ]] && echo "$p"
    done
}

cmd_stop() {
    local rc=0 pid
    if [[ -f "$REG_PID" ]]; then
        if pid_alive "$REG_PID" "$REG_CONFIG"; then
            pid="$(cat "$REG_PID")"
            log "stopping registry (pid $pid)"
            stop_pid "$pid" registry 15 || { log "registry (pid $pid) did not exit"; rc=1; }
        fi
        rm -f "$REG_PID"
    fi
    if [[ -f "$DOCKERD_PID" ]]; then
        if pid_alive "$DOCKERD_PID" "$SOCK"; then
            pid="$(cat "$DOCKERD_PID")"
            # Containers left running by tests: give them 2 s, not dockerd's
            # default 10 s per container on shutdown.
            local running
            running="$(timeout 10 "$DOCKER" -H "unix://$SOCK" ps -q 2>/dev/null || true)"
            if [[ -n "$running" ]]; then
                log "stopping $(echo "$running" | wc -l) running container(s)"
                # shellcheck disable=SC2086
                timeout 30 "$DOCKER" -H "unix://$SOCK" stop -t 2 $running >/dev/null 2>&1 || true
            fi
            log "stopping dockerd (pid $pid)"
            stop_pid "$pid" dockerd 45 || { log "dockerd (pid $pid) did not exit"; rc=1; }
        fi
        rm -f "$DOCKERD_PID"
    fi
    # After a crashed dockerd: containers still running under runc, then
    # their shims/containerd, then mounts it left under the state dir.
    local runc_root="$EXEC_ROOT/runtime-runc/moby" id
    if [[ -d "$runc_root" ]] && command -v runc >/dev/null; then
        for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
            log "removing orphaned container ${id:0:12}"
            runc --root "$runc_root" delete --force "$id" >/dev/null 2>&1 || rc=1
        done
    fi
    local left
    left="$(leftover_pids)"
    if [[ -n "$left" ]]; then
        log "ending leftover engine processes: ${left//$'\n'/ }"
        for pid in $left; do stop_pid "$pid" "leftover" 10 || rc=1; done
    fi
    local m
    while read -r m; do
        [[ -n "$m" ]] || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || { log "could not unmount $m"; rc=1; }
    done < <(awk -v s="$STATE/" 'index($2, s) == 1 { print $2 }' /proc/mounts | sort -r)
    rm -f "$SOCK" "$ENV_FILE"
    ((rc == 0)) && log "stopped (cache and data kept in $STATE)"
    return "$rc"
}

# ------------------------------------------------------------------ status --

cmd_status() {
    local ok=0 port
    if dockerd_up; then
        echo "dockerd:    running (pid $(cat "$DOCKERD_PID"), unix://$SOCK, driver $(cat "$DRIVER_FILE" 2>/dev/null))"
        if image_present; then echo "base image: present ($BASE_IMAGE)"; else echo "base image: missing ($BASE_IMAGE)"; ok=1; fi
    else
        echo "dockerd:    not running"; ok=1
        echo "base image: unknown (engine down)"
    fi
    if registry_up; then
        port="$(registry_port)"
        echo "registry:   running (pid $(cat "$REG_PID"), 127.0.0.1:$port)"
    else
        echo "registry:   not running"; ok=1
    fi
    return "$ok"
}

cmd_env() {
    if [[ -f "$ENV_FILE" ]] && dockerd_up && registry_up; then
        cat "$ENV_FILE"
        return 0
    fi
    echo "[docker-env] not started (run: bash scripts/docker-env.sh start)" >&2
    return 1
}

# ------------------------------------------------------------------- start --

cmd_start() {
    if [[ -f "$ENV_FILE" ]] && dockerd_up && registry_up && image_present; then
        cat "$ENV_FILE"
        return 0
    fi
    chmod 700 "$STATE"
    local t0=$SECONDS
    ensure_packages
    start_dockerd
    ensure_base_image
    start_registry
    if [[ "${WEAVE_DOCKER_SELFTEST:-1}" != 0 ]]; then
        selftest_ports
        selftest_registry
    fi
    write_env
    log "ready in $((SECONDS - t0)) s"
    cat "$ENV_FILE"
}

# One start/stop at a time per state dir (e.g. parallel test workers). The lock
# fd (9) is closed for the daemons so they do not hold it.
with_lock() {
    mkdir -p "$STATE"
    exec 9>"$STATE/lock"
    flock -w 600 9 || die "another docker-env.sh start/stop holds $STATE/lock for 10 min"
    "$@"
}

main() {
    case "${1:-}" in
        start)
            if ((${#SOCK} > 100)); then
                die "socket path $SOCK is ${#SOCK} chars (unix sockets allow ~100); set WEAVE_DOCKER_STATE to a shorter dir"
            fi
            with_lock cmd_start
            ;;
        stop)
            if [[ -d "$STATE" ]]; then with_lock cmd_stop; else log "nothing to stop ($STATE does not exist)"; fi
            ;;
        status) cmd_status ;;
        env) cmd_env ;;
        *)
            echo "usage: bash scripts/docker-env.sh start|stop|status|env" >&2
            exit 2
            ;;
    esac
}

main "$@"
