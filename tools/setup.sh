#!/usr/bin/env bash
# Installs the Debian packages dsa builds with (only those missing), then configures and builds into
# ./build. Used by tools/run.sh and tools/test.sh; safe to run again (incremental).
# Arguments: build targets (default: everything, tests included).
# Environment: BUILD_DIR (default build), DSA_CUDA (AUTO|ON|OFF, default AUTO), CI=true adds -Werror,
# DSA_SHARED_DATA (the shared corpus the tests read; default ../shared/data beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
          libgtest-dev libpcre2-dev libutf8proc-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "dsa setup: installing ${missing[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build_dir=${BUILD_DIR:-build}
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
shared=()
[ -n "${DSA_SHARED_DATA:-}" ] && shared=(-DDSA_SHARED_DATA="$DSA_SHARED_DATA")
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDSA_CUDA="${DSA_CUDA:-AUTO}" -DDSA_WERROR="$werror" \
    "${shared[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}"
