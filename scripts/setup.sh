#!/usr/bin/env bash
# Idempotent setup: makes .venv, installs the CPU build of PyTorch first (a plain `torch`
# requirement would pull several GB of CUDA), then physkan with its extras.
#   bash scripts/setup.sh          # runtime + server extras
#   bash scripts/setup.sh --dev    # also test tools, the example plugins, chromium + chromedriver
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_VERSION=${PHYSKAN_TORCH_VERSION:-2.13.0}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet)

if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    wheel=$(ls /opt/wheels/torch-"${TORCH_VERSION}"+cpu-*.whl 2>/dev/null | head -n 1 || true)
    if [ -n "$wheel" ]; then
        "${PIP[@]}" "$wheel"
    else
        "${PIP[@]}" "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu \
            || "${PIP[@]}" "torch==${TORCH_VERSION}+cpu" \
            || "${PIP[@]}" "torch==${TORCH_VERSION}"
    fi
fi

# Pin whatever torch is installed so no dependency can swap it for a CUDA build.
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
.venv/bin/python -c "import torch; print('torch==' + torch.__version__)" >"$constraints"

extras="server"
if [ "${1:-}" = "--dev" ]; then
    extras="server,dev"
fi
"${PIP[@]}" -c "$constraints" -e ".[${extras}]"

# The compiled local B-spline kernels (physkan.kan.native): built now so no run pays the
# compile; without a C compiler physkan keeps its pure-PyTorch route (slower, same numbers).
.venv/bin/python -m physkan.kan.native \
    || echo "note: native B-spline kernels not built: the KAN layer uses its PyTorch route" >&2

if [ "${1:-}" = "--dev" ]; then
    for plugin in plugins/*/; do
        [ -f "${plugin}pyproject.toml" ] && "${PIP[@]}" -c "$constraints" -e "$plugin"
    done
fi

# Bytecode for the editable sources, as pip writes for a regular install: a process that may
# not write it (PYTHONDONTWRITEBYTECODE=1, a read-only checkout) would otherwise compile
# physkan's ~120 modules on every start (~0.2 s of each `physkan discover`).
.venv/bin/python -m compileall -q -j 0 physkan plugins >/dev/null

# The zoo web-page test (tests/test_zoo_web.py) drives Debian's chromium with chromedriver.
install_chromium() {
    if command -v chromedriver >/dev/null 2>&1 \
        && { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }; then
        return 0
    fi
    local as_root=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            echo "note: chromium/chromedriver missing and no root: the browser test will skip" \
                "(install them with: apt-get install chromium chromium-driver)" >&2
            return 0
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "note: no apt-get: install chromium and chromedriver yourself for the browser test" >&2
        return 0
    fi
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends
                   chromium chromium-driver)
    if ! "${as_root[@]}" "${install[@]}"; then
        "${as_root[@]}" apt-get update -qq
        "${as_root[@]}" "${install[@]}" \
            || echo "note: could not install chromium/chromedriver: the browser test will skip" >&2
    fi
}
if [ "${1:-}" = "--dev" ]; then
    install_chromium
fi
echo "physkan is set up in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
