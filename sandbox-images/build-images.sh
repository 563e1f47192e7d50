#!/usr/bin/env bash
# Build safeagent's container images locally, without pulling from any registry:
#   safeagent/debian-base:bookworm  debootstrap'd Debian (tests/cluster/base-image.sh), if missing
#   wheelhouse                      Python wheels of the operator, made on the host
#   safeagent/sandbox:dev           sandbox-images/Dockerfile (runner plus a small toolset)
#   safeagent/operator:dev          operator/Dockerfile (Kopf operator in a virtualenv)
#   safeagent/sandbox-oracle:dev    sandbox-images/Dockerfile.oracle: the sandbox image plus strace, for
#                                   the behavioural oracle (tests/oracle) only; never built by default
#
# usage: sandbox-images/build-images.sh [wheelhouse|base|sandbox|operator|oracle]...
#        (default: base wheelhouse sandbox operator)
#
# Environment:
#   BASE_IMAGE        base of both images (default safeagent/debian-base:bookworm); a user who can
#                     pull may set debian:bookworm-slim and skip the debootstrap
#   SAFEAGENT_CACHE   cache directory (default $HOME/.cache/safeagent); the wheelhouse and build
#                     contexts live under it
#   PYTHON            host interpreter used for pip (default python3)
#   SANDBOX_IMAGE     the sandbox image's tag (default safeagent/sandbox:dev); the oracle image is built on it
#   ORACLE_IMAGE      the oracle image's tag (default safeagent/sandbox-oracle:dev)
#
# Cache-friendly: the dependency wheels are fetched again only when operator/pyproject.toml changes,
# and each Dockerfile installs dependencies in a layer of its own.
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/cluster/lib.sh"
# The build functions run under `step`, where `set -e` does not apply: each command that can fail
# says `|| return` (or dies) itself.

BASE_IMAGE=${BASE_IMAGE:-safeagent/debian-base:bookworm}
OPERATOR_IMAGE=${OPERATOR_IMAGE:-safeagent/operator:dev}
SANDBOX_IMAGE=${SANDBOX_IMAGE:-safeagent/sandbox:dev}
ORACLE_IMAGE=${ORACLE_IMAGE:-safeagent/sandbox-oracle:dev}
PYTHON=${PYTHON:-python3}
WHEELHOUSE="$SAFEAGENT_CACHE/wheelhouse"
CONTEXTS="$SAFEAGENT_CACHE/build"

# The image's interpreter is Debian bookworm's Python 3.11 on glibc 2.36; wheels are chosen for it
# whatever Python the host runs.
IMAGE_PYTHON_VERSION=3.11
IMAGE_GLIBC_MINOR=36

build_base() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "    $BASE_IMAGE: present"
    elif [[ "$BASE_IMAGE" == safeagent/debian-base:* ]]; then
        "$REPO_ROOT/tests/cluster/base-image.sh" "$BASE_IMAGE"
    else
        die "base image $BASE_IMAGE is not present (this script never pulls; docker pull it yourself)"
    fi
}

# The runtime dependencies named in operator/pyproject.toml.
# The operator image's requirements: the package's own and its `operator` extra (Kopf, metrics).
runtime_requirements() {
    "$PYTHON" - "$REPO_ROOT/operator/pyproject.toml" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["operator"]))
PY
}

build_wheelhouse() {
    local arch key requirements minor
    local -a platforms=(--platform any)
    arch=$(uname -m)
    # pip takes each accepted platform tag literally: list every manylinux the image's glibc runs.
    for ((minor = 5; minor <= IMAGE_GLIBC_MINOR; minor++)); do
        platforms+=(--platform "manylinux_2_${minor}_$arch")
    done
    platforms+=(--platform "manylinux2014_$arch" --platform "manylinux2010_$arch" --platform "manylinux1_$arch")
    requirements="$WHEELHOUSE/requirements.txt"
    mkdir -p "$WHEELHOUSE/deps" "$WHEELHOUSE/app" || return
    key="$(sha256sum "$REPO_ROOT/operator/pyproject.toml" | cut -d' ' -f1) py$IMAGE_PYTHON_VERSION glibc2.$IMAGE_GLIBC_MINOR $arch"
    if stamp_ok wheelhouse-deps "$key" && compgen -G "$WHEELHOUSE/deps/*.whl" >/dev/null; then
        log "    dependency wheels: cached ($(find "$WHEELHOUSE/deps" -name '*.whl' | wc -l) wheels)"
    else
        runtime_requirements >"$requirements" || return
        rm -f "$WHEELHOUSE/deps"/*.whl
        # Binary wheels only, for the image's interpreter and platform: nothing is compiled here and
        # nothing has to be compiled in the image.
        run_logged wheelhouse-deps "$PYTHON" -m pip download --disable-pip-version-check \
            --only-binary=:all: --python-version "$IMAGE_PYTHON_VERSION" \
            --implementation cp "${platforms[@]}" \
            --dest "$WHEELHOUSE/deps" --requirement "$requirements"
        stamp_set wheelhouse-deps "$key"
        log "    dependency wheels: $(find "$WHEELHOUSE/deps" -name '*.whl' | wc -l) downloaded"
    fi
    # The operator's own wheel, rebuilt every time (a few seconds): the code changes often. A fixed
    # SOURCE_DATE_EPOCH makes the same code give the same wheel, so Docker keeps its cached layer.
    rm -f "$WHEELHOUSE/app"/*.whl
    SOURCE_DATE_EPOCH=315532800 run_logged wheelhouse-app "$PYTHON" -m pip wheel --disable-pip-version-check --no-deps \
        --wheel-dir "$WHEELHOUSE/app" "$REPO_ROOT/operator"
    log "    app wheel: $(basename "$WHEELHOUSE"/app/*.whl)"
}

# A build context of its own for the operator image: the wheelhouse, nothing else from the host.
build_operator() {
    [[ -d "$WHEELHOUSE/app" ]] && compgen -G "$WHEELHOUSE/app/*.whl" >/dev/null \
        || die "no wheelhouse in $WHEELHOUSE: run '$0 wheelhouse' first"
    local context="$CONTEXTS/operator"
    rm -rf "$context" || return
    mkdir -p "$context/wheelhouse" || return
    cp -a "$WHEELHOUSE/deps" "$WHEELHOUSE/app" "$context/wheelhouse/" || return
    run_logged docker-build-operator docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --file "$REPO_ROOT/operator/Dockerfile" --tag "$OPERATOR_IMAGE" "$context"
    log "    $OPERATOR_IMAGE: $(docker image inspect --format '{{.Id}}' "$OPERATOR_IMAGE" | cut -c1-19)"
}

# sandbox-images/Dockerfile expects the repository root as its context. Sending the real root
# would ship .git and .venv to the daemon on every build, so a copy of the two folders it may COPY
# from (the operator's stdlib modules and sandbox-images/) stands in for it.
build_sandbox() {
    [[ -f "$REPO_ROOT/sandbox-images/Dockerfile" ]] \
        || die "sandbox-images/Dockerfile does not exist yet (the operator issue provides it)"
    local context="$CONTEXTS/sandbox"
    rm -rf "$context" || return
    mkdir -p "$context/operator" || return
    cp -a "$REPO_ROOT/operator/safeagent" "$context/operator/" || return
    cp -a "$REPO_ROOT/sandbox-images" "$context/" || return
    find "$context" -name __pycache__ -prune -exec rm -rf {} +
    run_logged docker-build-sandbox docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --file "$context/sandbox-images/Dockerfile" --tag "$SANDBOX_IMAGE" "$context"
    log "    $SANDBOX_IMAGE: $(docker image inspect --format '{{.Id}}' "$SANDBOX_IMAGE" | cut -c1-19)"
}

# The oracle's image: FROM the sandbox image, plus strace (which must never be in the image jobs run in).
build_oracle() {
    docker image inspect "$SANDBOX_IMAGE" >/dev/null 2>&1 \
        || die "the sandbox image $SANDBOX_IMAGE is not present: build it first ('$0 sandbox')"
    [[ "$ORACLE_IMAGE" != "$SANDBOX_IMAGE" ]] || die "ORACLE_IMAGE must differ from SANDBOX_IMAGE"
    run_logged docker-build-oracle docker build --build-arg "SANDBOX_IMAGE=$SANDBOX_IMAGE" \
        --file "$REPO_ROOT/sandbox-images/Dockerfile.oracle" --tag "$ORACLE_IMAGE" "$REPO_ROOT/sandbox-images"
    log "    $ORACLE_IMAGE: $(docker image inspect --format '{{.Id}}' "$ORACLE_IMAGE" | cut -c1-19) (on $SANDBOX_IMAGE)"
}

main() {
    local -a what=("$@")
    ((${#what[@]})) || what=(base wheelhouse sandbox operator)
    docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (make cluster starts it)"
    local t0=$SECONDS item
    for item in "${what[@]}"; do
        case "$item" in
            base) step "base image $BASE_IMAGE" build_base ;;
            wheelhouse) step "wheelhouse in $WHEELHOUSE" build_wheelhouse ;;
            sandbox) step "sandbox image $SANDBOX_IMAGE" build_sandbox ;;
            operator) step "operator image $OPERATOR_IMAGE" build_operator ;;
            oracle) step "oracle image $ORACLE_IMAGE" build_oracle ;;
            *) die "unknown part '$item' (choose from wheelhouse base sandbox operator oracle)" ;;
        esac
    done
    log "images done in $((SECONDS - t0))s"
}

main "$@"
