#!/bin/sh
# Installs what `make test` needs on Debian/Ubuntu (libcheck + pkg-config), or says exactly what is missing.
if pkg-config --exists check 2>/dev/null; then exit 0; fi
PKGS="check pkg-config"
echo "make test: libcheck (Debian package 'check') not found; installing: $PKGS"
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo"; else
  echo "error: cannot install as a normal user without sudo. Run:  sudo apt-get update && sudo apt-get install -y $PKGS" >&2; exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: no apt-get here. Install libcheck and pkg-config with your package manager (e.g. 'check' + 'pkg-config')." >&2; exit 1
fi
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $PKGS >/dev/null || {
  echo "error: apt-get install $PKGS failed. Run:  sudo apt-get update && sudo apt-get install -y $PKGS" >&2; exit 1; }
pkg-config --exists check || { echo "error: libcheck still not found by pkg-config after install" >&2; exit 1; }
