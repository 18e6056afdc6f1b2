#!/usr/bin/env bash
# bench/gpu-deps.sh - gather the Debian packages gpu-als builds with into .gpudeps/, for a GPU
# machine that cannot install anything itself (no network there).
#
# Run it here, where `apt-get download` works; then send .gpudeps/ along with the working tree
# to the GPU machine, where bench/gpu-check.sh unpacks the packages into a temporary folder
# (never into /) and points the compiler, pkg-config and the loader at them. The packages are the
# libraries of tests/setup-debian.sh plus what they load at run time and pkg-config itself;
# about 16 MB. .gpudeps/ is ignored by git.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.gpudeps

packages=(
  libopenblas-dev libopenblas-pthread-dev libopenblas0 libopenblas0-pthread
  liblapacke-dev liblapacke libtmglib-dev libtmglib3 liblapack3 libblas3
  libgfortran5 libquadmath0
  libcsv-dev libcsv3 libjansson-dev libjansson4 uthash-dev libxxhash-dev libxxhash0
  libcmocka-dev libcmocka0
  pkgconf pkgconf-bin libpkgconf3
)

rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
apt-get download "${packages[@]}"
echo "gpu-deps: $(ls "$dir"/*.deb | wc -l) packages, $(du -sh "$dir" | cut -f1) in $dir"
