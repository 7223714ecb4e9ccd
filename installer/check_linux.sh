#!/usr/bin/env bash
# The packaging checks CI runs on Linux. Builds the PyInstaller one-folder build, runs the frozen
# program the way a user would, validates the Linux metadata, packs and installs the tarball into
# a throw-away home, and compiles the Windows installer script against a placeholder payload.
#
#   installer/check_linux.sh [PYTHON]        (or PYTHON=... installer/check_linux.sh)
#
# PYTHON: an interpreter that imports portwatch (CI: a venv with portwatch installed
# non-editable) and has pyinstaller. Tools: desktop-file-validate (desktop-file-utils),
# appstreamcli (appstream), makensis (nsis).
# Output goes to $PORTWATCH_BUILD_OUT (default installer/out/, git-ignored). Exit status 0 only
# if every check that could run passed; checks that cannot run yet are listed as SKIPPED.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
PYTHON="${1:-${PYTHON:-}}"
if [ -z "$PYTHON" ]; then
    echo "usage: $0 PYTHON   (or set \$PYTHON): the Python with portwatch and pyinstaller" >&2
    exit 2
fi
PYTHON="$(command -v "$PYTHON")"
export PYTHON
OUT="${PORTWATCH_BUILD_OUT:-$REPO/installer/out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
APP_ID=io.github.portwatch.Portwatch
SKIPPED=()
# Python puts the current folder first on sys.path (`-c`, `-m`): from the repository root the
# source tree would shadow the installed package, and the build would freeze the wrong one.
cd "$WORK"

step() { printf '\n== %s\n' "$*"; }
fail() {
    echo "FAILED: $*" >&2
    exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
megabytes() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1000000 }'; }
need_tool() { command -v "$1" >/dev/null || fail "'$1' not found (Debian package: $2)"; }

step "tools"
need_tool desktop-file-validate desktop-file-utils
need_tool appstreamcli appstream
need_tool makensis nsis
"$PYTHON" -c "import PyInstaller" 2>/dev/null || fail "$PYTHON cannot import PyInstaller (pip install pyinstaller)"
VERSION="$("$PYTHON" "$HERE/buildinfo.py" version)"
FROZEN_FROM="$("$PYTHON" -c 'import portwatch, os; print(os.path.dirname(portwatch.__file__), portwatch.__version__)')" ||
    fail "$PYTHON cannot import portwatch"
echo "python:            $PYTHON"
echo "freezing:          $FROZEN_FROM"
echo "source version:    $VERSION"
[ "${FROZEN_FROM##* }" = "$VERSION" ] || fail "the installed portwatch is not the version in this checkout"

step "icons are up to date with their drawings"
"$PYTHON" "$REPO/icons/generate.py" --check || fail "run: python icons/generate.py"

step "desktop entry and AppStream metadata"
desktop-file-validate "$HERE/linux/$APP_ID.desktop"
appstreamcli validate --no-net "$HERE/linux/$APP_ID.metainfo.xml"
newest_release="$(grep -o '<release version="[^"]*"' "$HERE/linux/$APP_ID.metainfo.xml" | head -n 1 | cut -d'"' -f2)"
[ "$newest_release" = "$VERSION" ] ||
    fail "metainfo's newest <release> is $newest_release, the package is $VERSION"

step "Windows installer script compiles (placeholder payload; warnings are errors)"
payload="$WORK/nsis-payload"
mkdir -p "$payload/_internal"
for exe in portwatch.exe portwatch-cli.exe; do printf 'placeholder\n' >"$payload/$exe"; done
printf 'placeholder\n' >"$payload/_internal/placeholder.dat"
(cd "$HERE/windows" && makensis -WX -V2 -DVERSION="$VERSION" \
    -DVERSION4="$("$PYTHON" "$HERE/buildinfo.py" nsis-version)" \
    -DPAYLOAD="$payload" -DOUTFILE="$WORK/portwatch-setup.exe" portwatch.nsi)
[ "$(head -c 2 "$WORK/portwatch-setup.exe")" = "MZ" ] || fail "makensis did not produce a Windows program"
echo "makensis: ok ($(stat -c %s "$WORK/portwatch-setup.exe") bytes with the placeholder payload)"

step "PyInstaller one-folder build"
DIST="$OUT/dist/portwatch"
t0="$(now)"
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$OUT/dist" --workpath "$OUT/build" "$HERE/portwatch.spec"
BUILD_S="$(elapsed "$t0" "$(now)")"
EXE="$DIST/portwatch"
[ -x "$EXE" ] || fail "no executable at $EXE"
FOLDER_BYTES="$(du -sb "$DIST" | cut -f1)"
FOLDER_FILES="$(find "$DIST" -type f | wc -l)"
echo "built $DIST in $BUILD_S s"

step "unused Qt parts stayed out"
unwanted="$(find "$DIST" \( -name 'libQt6Qml*' -o -name 'libQt6Quick*' -o -name 'libQt6WebEngine*' \
    -o -name 'libQt6Pdf*' -o -name 'libQt63D*' -o -name 'libQt6Multimedia*' -o -path '*pyqtgraph/opengl*' \) -print)"
[ -z "$unwanted" ] || fail "excluded modules were bundled anyway:
$unwanted"
[ -d "$DIST/_internal/portwatch/resources/icons" ] || fail "packaged icons missing from the build"
echo "ok"

# The frozen program runs with a throw-away home so it never touches the real user's files.
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" XDG_DATA_HOME="$WORK/home/.local/share" \
    XDG_CACHE_HOME="$WORK/home/.cache" XDG_RUNTIME_DIR="$WORK/runtime"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
DATA="$WORK/data"

step "frozen program: --version"
reported="$("$EXE" --version)"
[ "$reported" = "portwatch $VERSION" ] || fail "--version said '$reported'"
echo "$reported"

step "frozen program: scan --json"
if "$EXE" scan --help >/dev/null 2>&1; then
    # A real listener on a loopback port the frozen program must find and attribute.
    port_file="$WORK/listener.port"
    "$PYTHON" - "$port_file" <<'PY' &
import os, socket, sys, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
with open(sys.argv[1] + ".tmp", "w", encoding="ascii") as handle:
    handle.write(str(server.getsockname()[1]))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)
PY
    LISTENER_PID=$!
    trap 'kill "$LISTENER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
    for _ in $(seq 100); do [ -s "$port_file" ] && break; sleep 0.1; done
    [ -s "$port_file" ] || fail "the test listener did not start"
    scan_args=(scan --json)
    if "$EXE" scan --help | grep -q -- '--all'; then scan_args+=(--all); fi
    "$EXE" --data-dir "$DATA" "${scan_args[@]}" >"$WORK/scan.json"
    kill "$LISTENER_PID" 2>/dev/null || true
    "$PYTHON" - "$WORK/scan.json" "$(cat "$port_file")" "$LISTENER_PID" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as handle:
    data = json.load(handle)
port, pid = int(sys.argv[2]), int(sys.argv[3])
assert isinstance(data, list), f"expected a JSON array, got {type(data).__name__}"
found = [row for row in data if isinstance(row, dict) and row.get("port") == port]
assert found, f"the listener on 127.0.0.1:{port} is missing from scan --json"
assert found[0].get("pid") in (pid, None), found[0]
print(f"scan --json: valid JSON, {len(data)} listeners, test listener on port {port} found")
PY
else
    SKIPPED+=("scan --json: this portwatch has no 'scan' command yet")
    echo "SKIPPED: no 'scan' command in this build yet"
fi

step "frozen program: desktop window (--smoke, offscreen)"
SMOKE_S=""
if "$PYTHON" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("portwatch.app") is None)' &&
    "$EXE" --help | grep -q -- '--smoke'; then
    shot="$OUT/smoke.png"
    rm -f "$shot"
    t0="$(now)"
    QT_QPA_PLATFORM=offscreen timeout 120 "$EXE" --data-dir "$DATA" --smoke "$shot" ||
        fail "the frozen desktop app did not start and exit cleanly (--smoke)"
    SMOKE_S="$(elapsed "$t0" "$(now)")"
    "$PYTHON" - "$shot" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as handle:
    head = handle.read(24)
assert head[:8] == b"\x89PNG\r\n\x1a\n", "the smoke screenshot is not a PNG"
width, height = struct.unpack(">II", head[16:24])
assert width > 0 and height > 0
print(f"screenshot {sys.argv[1]}: {width}x{height}")
PY
else
    SKIPPED+=("--smoke: the desktop app (portwatch.app) is not in this portwatch yet")
    echo "SKIPPED: portwatch.app is not there yet, so the window cannot be opened"
fi

step "tarball and per-user install"
t0="$(now)"
TARBALL="$("$HERE/linux/build_tarball.sh" "$DIST" "$OUT" | tail -n 1)"
PACK_S="$(elapsed "$t0" "$(now)")"
TARBALL_BYTES="$(stat -c %s "$TARBALL")"
mkdir -p "$WORK/unpacked"
tar -C "$WORK/unpacked" -xzf "$TARBALL"
unpacked="$(find "$WORK/unpacked" -mindepth 1 -maxdepth 1 -type d)"
"$unpacked/install.sh" >/dev/null
installed_entry="$HOME/.local/share/applications/$APP_ID.desktop"
desktop-file-validate "$installed_entry"
grep -q "^Exec=\"$HOME/.local/lib/portwatch/portwatch\"$" "$installed_entry" ||
    fail "installed desktop entry does not point at the installed program"
[ -f "$HOME/.local/share/icons/hicolor/scalable/apps/$APP_ID.svg" ] || fail "scalable icon not installed"
[ -f "$HOME/.local/share/icons/hicolor/48x48/apps/$APP_ID.png" ] || fail "48 px icon not installed"
[ "$("$HOME/.local/bin/portwatch" --version)" = "portwatch $VERSION" ] || fail "installed command does not run"
"$unpacked/install.sh" --uninstall >/dev/null
[ ! -e "$installed_entry" ] && [ ! -e "$HOME/.local/lib/portwatch" ] && [ ! -e "$HOME/.local/bin/portwatch" ] ||
    fail "uninstall left files behind"
echo "install.sh and install.sh --uninstall: ok"

step "figures"
printf '%-28s %s\n' "build time" "$BUILD_S s (PyInstaller --clean)"
printf '%-28s %s\n' "one-folder size" "$(megabytes "$FOLDER_BYTES") MB in $FOLDER_FILES files"
printf '%-28s %s\n' "compressed (.tar.gz)" "$(megabytes "$TARBALL_BYTES") MB (packed in $PACK_S s): $TARBALL"
if [ -n "$SMOKE_S" ]; then
    printf '%-28s %s\n' "time to first window" "$SMOKE_S s (--smoke wall time: start, paint, screenshot, exit)"
else
    printf '%-28s %s\n' "time to first window" "not measured (skipped)"
fi
if [ "${#SKIPPED[@]}" -gt 0 ]; then
    printf '\nSKIPPED checks:\n'
    printf '  - %s\n' "${SKIPPED[@]}"
fi
printf '\nall packaging checks that could run passed\n'
