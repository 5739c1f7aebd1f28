#!/bin/sh
# Installs what `make test` needs on Debian/Ubuntu, or says exactly what is missing:
# libcheck + pkg-config (the test suites), Open MPI's mpicc + mpirun (test_dist: data-parallel training).
PKGS=""
pkg-config --exists check 2>/dev/null || PKGS="check pkg-config"
{ command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; } || PKGS="$PKGS libopenmpi-dev openmpi-bin"
[ -z "$PKGS" ] && exit 0
echo "make test: installing what is missing:$PKGS"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else
  echo "error: cannot install as a normal user without sudo. Run:  sudo apt-get update && sudo apt-get install -y $PKGS" >&2; exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here. Install with your package manager: libcheck and pkg-config ('check', 'pkg-config'), Open MPI (mpicc, mpirun)." >&2; exit 1
fi
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $PKGS >/dev/null || {
  echo "error: apt-get install $PKGS failed. Run:  sudo apt-get update && sudo apt-get install -y $PKGS" >&2; exit 1; }
pkg-config --exists check || { echo "error: libcheck still not found by pkg-config after install" >&2; exit 1; }
command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1 || { echo "error: mpicc/mpirun still not found after install" >&2; exit 1; }
