#!/usr/bin/env bash
# Install GPAW (the optional DFT back end, `mlexplore[dft]`) into a virtual environment.
#
#   scripts/install_gpaw.sh [VENV]        (default VENV: .venv)
#
# GPAW builds from PyPI against Debian's libxc, OpenBLAS and FFTW; it needs a site
# config that names g++ as the compiler (without it the build fails on
# "algorithm: No such file") and switches MPI off. gpaw-data brings the PAW setups.
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
GPAW_CONFIG="$config" "$venv/bin/pip" install "gpaw==26.7.0" "gpaw-data==1.2.1"
"$venv/bin/python" -c "import gpaw; print('GPAW', gpaw.__version__, 'ready')"
