#!/usr/bin/env bash
# Install portwatch for the current user (no root): the program under ~/.local/lib/portwatch,
# a `portwatch` command in ~/.local/bin, the menu entry, icons and AppStream data under
# ~/.local/share. Run from the unpacked tarball:
#
#   ./install.sh               install or update
#   ./install.sh --uninstall   remove what install.sh put there (your settings and history stay)
#
# PREFIX=/some/where ./install.sh installs under another prefix instead of ~/.local.
set -euo pipefail

APP_ID=io.github.portwatch.Portwatch
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${PREFIX:-$HOME/.local}"
LIB_DIR="$PREFIX/lib/portwatch"
BIN_LINK="$PREFIX/bin/portwatch"
SHARE="$PREFIX/share"
DESKTOP_FILE="$SHARE/applications/$APP_ID.desktop"
METAINFO_FILE="$SHARE/metainfo/$APP_ID.metainfo.xml"

refresh_caches() {
    # Menus and icon themes pick the changes up sooner; harmless where the tools are missing.
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$SHARE/applications" 2>/dev/null || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$SHARE/icons/hicolor/index.theme" ]; then
        gtk-update-icon-cache -q -t "$SHARE/icons/hicolor" 2>/dev/null || true
    fi
}

icon_files() {
    (cd "$HERE/share/icons" && find hicolor -type f -name "$APP_ID.*")
}

uninstall() {
    rm -f "$DESKTOP_FILE" "$METAINFO_FILE"
    if [ -L "$BIN_LINK" ]; then rm -f "$BIN_LINK"; fi
    while IFS= read -r icon; do rm -f "$SHARE/icons/$icon"; done < <(icon_files)
    # Only our own folder, and only if it holds our program.
    if [ -x "$LIB_DIR/portwatch" ] && [ -d "$LIB_DIR/_internal" ]; then rm -rf "$LIB_DIR"; fi
    refresh_caches
    echo "portwatch removed from $PREFIX (settings and history were kept)."
}

# The Exec value: the program's absolute path, quoted and escaped as the Desktop Entry spec says
# (inside quotes \ " ` $ take a backslash; then the value's own escaping doubles backslashes).
desktop_exec() {
    local path="$1"
    path="${path//\\/\\\\}"
    path="${path//\"/\\\"}"
    path="${path//\`/\\\`}"
    path="${path//\$/\\\$}"
    path="${path//%/%%}"
    path="${path//\\/\\\\}"
    printf '"%s"' "$path"
}

install() {
    if [ ! -x "$HERE/app/portwatch" ]; then
        echo "install.sh: $HERE/app/portwatch is missing; run me from the unpacked tarball" >&2
        exit 1
    fi
    mkdir -p "$PREFIX/lib" "$PREFIX/bin" "$SHARE/applications" "$SHARE/metainfo"
    # Replace, never merge: libraries of an older version must not linger.
    local staging="$LIB_DIR.new.$$"
    rm -rf "$staging"
    cp -a "$HERE/app" "$staging"
    rm -rf "$LIB_DIR"
    mv "$staging" "$LIB_DIR"
    ln -sfn "$LIB_DIR/portwatch" "$BIN_LINK"

    local exec_value
    exec_value="$(desktop_exec "$LIB_DIR/portwatch")"
    sed "s|^Exec=.*|Exec=${exec_value//|/\\|}|" "$HERE/share/applications/$APP_ID.desktop" >"$DESKTOP_FILE.tmp"
    mv "$DESKTOP_FILE.tmp" "$DESKTOP_FILE"
    cp "$HERE/share/metainfo/$APP_ID.metainfo.xml" "$METAINFO_FILE"
    while IFS= read -r icon; do
        mkdir -p "$(dirname "$SHARE/icons/$icon")"
        cp "$HERE/share/icons/$icon" "$SHARE/icons/$icon"
    done < <(icon_files)
    refresh_caches
    echo "portwatch installed: menu entry \"portwatch\", command $BIN_LINK"
    case ":$PATH:" in
        *":$PREFIX/bin:"*) ;;
        *) echo "note: $PREFIX/bin is not on your PATH; the menu entry works regardless." ;;
    esac
}

case "${1:-}" in
    "") install ;;
    --uninstall) uninstall ;;
    *) echo "usage: $0 [--uninstall]" >&2; exit 2 ;;
esac
