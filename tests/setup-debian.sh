#!/usr/bin/env bash
# Install what gpu-als builds, tests and benchmarks with, from Debian's packages (Debian 12 or
# newer; Ubuntu 22.04+ has the same names). The CUDA Toolkit (nvcc, cuBLAS, cuSPARSE, cuSOLVER)
# is optional and comes from NVIDIA's packages; without it the CPU path is built alone.
set -euo pipefail

packages=(
  build-essential cmake pkg-config   # compiler and build
  libopenblas-dev liblapacke-dev     # BLAS and LAPACKE for the CPU path
  libcsv-dev                         # quoted CSV (movies.csv)
  libjansson-dev                     # JSON (model meta.json, --json output)
  uthash-dev                         # hash tables (id maps)
  libxxhash-dev                      # checksums of model files
  libcmocka-dev                      # unit tests
  gnuplot-nox                        # --plot
  hyperfine                          # command timing in bench/
  python3 python3-numpy              # bench/run and the numpy.load check of model files
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

# Skip the network when everything is already there.
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup-debian: all ${#packages[@]} packages are installed"
  exit 0
fi
echo "setup-debian: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
