#!/usr/bin/env bash
# Idempotent setup: makes .venv, installs the CPU build of PyTorch first (a plain `torch`
# requirement would pull several GB of CUDA), then physkan with its extras.
#   bash scripts/setup.sh          # runtime + server extras
#   bash scripts/setup.sh --dev    # also test tools and the example plugins
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

if [ "${1:-}" = "--dev" ]; then
    for plugin in plugins/*/; do
        [ -f "${plugin}pyproject.toml" ] && "${PIP[@]}" -c "$constraints" -e "$plugin"
    done
fi
echo "physkan is set up in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
