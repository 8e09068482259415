#!/usr/bin/env bash
# Install mlexplore with its optional DFT back end, `mlexplore[dft]` (GPAW), into a virtual
# environment.
#
#   scripts/install_gpaw.sh [VENV]        (default VENV: .venv)
#
# The versions are those of the `dft` extra in pyproject.toml. GPAW builds from PyPI against
# Debian's libxc, OpenBLAS and FFTW; it needs a site config that names g++ as the compiler
# (without it the build fails on "algorithm: No such file") and switches MPI off, so a bare
# `pip install "mlexplore[dft]"` fails here. gpaw-data brings the PAW setups.
set -euo pipefail
venv="${1:-.venv}"
if ! dpkg -s libxc-dev libopenblas-dev libfftw3-dev >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxc-dev libopenblas-dev libfftw3-dev
fi
config="$(mktemp -d)/gpaw_siteconfig.py"
cat > "$config" <<'CFG'
compiler = 'g++'
mpi = False
fftw = True
libraries += ['fftw3', 'xc', 'openblas']
CFG
root="$(cd "$(dirname "$0")/.." && pwd)"
GPAW_CONFIG="$config" "$venv/bin/pip" install -e "$root[dft]"
"$venv/bin/python" -c "import gpaw; print('GPAW', gpaw.__version__, 'ready')"
