#!/usr/bin/env bash
# Package the PyInstaller one-folder build as portwatch-<version>-linux-<arch>.tar.gz with the
# desktop entry, AppStream data, hicolor icons and install.sh (per-user install into ~/.local).
#
#   installer/linux/build_tarball.sh DIST_FOLDER OUT_FOLDER
#     DIST_FOLDER  the one-folder build (e.g. installer/out/dist/portwatch)
#     OUT_FOLDER   where the .tar.gz goes; its path is printed on the last line
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 DIST_FOLDER OUT_FOLDER" >&2
    exit 2
fi
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DIST="$(cd "$1" && pwd)"
mkdir -p "$2"
OUT="$(cd "$2" && pwd)"
APP_ID=io.github.portwatch.Portwatch
PYTHON_FOR_INFO="${PYTHON:-python3}"
VERSION="$("$PYTHON_FOR_INFO" "$REPO/installer/buildinfo.py" version)"
ARCH="$(uname -m)"
NAME="portwatch-$VERSION-linux-$ARCH"

if [ ! -x "$DIST/portwatch" ]; then
    echo "build_tarball.sh: $DIST/portwatch is not an executable one-folder build" >&2
    exit 1
fi

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/$NAME"
mkdir -p "$ROOT/share/applications" "$ROOT/share/metainfo" "$ROOT/share/icons/hicolor/scalable/apps"
cp -a "$DIST" "$ROOT/app"
cp "$HERE/$APP_ID.desktop" "$ROOT/share/applications/"
cp "$HERE/$APP_ID.metainfo.xml" "$ROOT/share/metainfo/"
cp "$REPO/icons/portwatch.svg" "$ROOT/share/icons/hicolor/scalable/apps/$APP_ID.svg"
for size in 16 24 32 48 64 128 256 512; do
    mkdir -p "$ROOT/share/icons/hicolor/${size}x${size}/apps"
    cp "$REPO/icons/png/portwatch-$size.png" "$ROOT/share/icons/hicolor/${size}x${size}/apps/$APP_ID.png"
done
install -m 0755 "$HERE/install.sh" "$ROOT/install.sh"
cat >"$ROOT/README.txt" <<TXT
portwatch $VERSION for Linux ($ARCH)

Run without installing:   ./app/portwatch
Install for your user:    ./install.sh            (menu entry, icons, ~/.local/bin/portwatch)
Remove again:             ./install.sh --uninstall
Command line:             ./app/portwatch scan --json
TXT

TARBALL="$OUT/$NAME.tar.gz"
tar -C "$STAGE" --owner=0 --group=0 --numeric-owner -czf "$TARBALL" "$NAME"
echo "$TARBALL"
