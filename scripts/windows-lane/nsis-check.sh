#!/usr/bin/env bash
# The setup program under Wine: built with makensis, then installed, checked, refused while
# portwatch runs, and uninstalled silently by scripts/windows-installer-check.py under Windows
# Python (the same script the cross-platform workflow runs on a real Windows). Called by
# scripts/windows-lane.sh with the prefix ready (WINEPREFIX exported, Windows Python in
# C:\py311); writes KIND|NAME|DETAIL lines to LOG/nsis.results.
#
#   nsis-check.sh PROJECT_DIR CACHE LOG
#
# The payload stands in for the PyInstaller build (which cannot be made here): pythonw.exe as
# portwatch.exe and python.exe as portwatch-cli.exe, the DLLs in _internal\ as in PyInstaller
# 6's layout. The shipped script is x86; wine64 without wine32 runs only x64 programs, so the
# same script is also built for amd64 and that one is installed: same logic, paths and keys.
set -uo pipefail
PROJ="$1" CACHE="$2" LOG="$3"
RESULTS="$LOG/nsis.results"
: >"$RESULTS"
out() { printf '%s|%s|%s\n' "$1" "$2" "${3:-}" >>"$RESULTS"; }
C="$WINEPREFIX/drive_c"

pay="$C/lane/nsis/payload"
rm -rf "$C/lane/nsis" && mkdir -p "$pay/_internal"
cp "$C/py311/pythonw.exe" "$pay/portwatch.exe" && cp "$C/py311/python.exe" "$pay/portwatch-cli.exe"
cp "$C"/py311/python311.dll "$C"/py311/python3.dll "$C"/py311/vcruntime140*.dll "$C/py311/python311.zip" "$pay/_internal/"
v="$(python3 "$PROJ/installer/buildinfo.py" version)"
v4="$(python3 "$PROJ/installer/buildinfo.py" nsis-version)"
if (cd "$PROJ/installer/windows" &&
  makensis -WX -V2 -DVERSION="$v" -DVERSION4="$v4" -DPAYLOAD="$pay" -DOUTFILE="$C/lane/nsis/setup-x86.exe" portwatch.nsi &&
  makensis -WX -V2 "-XTarget amd64-unicode" -DVERSION="$v" -DVERSION4="$v4" -DPAYLOAD="$pay" -DOUTFILE="$C/lane/nsis/setup-amd64.exe" portwatch.nsi) \
  >"$LOG/makensis.log" 2>&1; then
  out PASS nsis-compiles "x86 and amd64, warnings are errors"
else
  out FAIL nsis-compiles "see $LOG/makensis.log"
  exit 0
fi

# What the stand-in portwatch.exe runs while "portwatch is running": mark, then wait.
cat >"$C/lane/nsis/running.py" <<'PY'
import sys, time
open(sys.argv[1], "w").write("up")
time.sleep(90)
PY
nice -n 5 timeout 600 wine 'C:\py311\python.exe' 'C:\lane\src\scripts\windows-installer-check.py' \
  'C:\lane\nsis\setup-amd64.exe' --stand-in 'C:\lane\nsis\running.py' --wine-shortcut-limit </dev/null 2>&1 | tr -d '\r' >"$LOG/installer.log"
while IFS= read -r line; do
  case "$line" in
  "installer: PASS "* | "installer: FAIL "* | "installer: LIMIT "*)
    read -r _ kind name detail <<<"$line"
    out "$kind" "nsis-$name" "$detail"
    ;;
  esac
done <"$LOG/installer.log"
grep -q '^installer: [0-9]* passed' "$LOG/installer.log" || out FAIL nsis-check "did not finish (see $LOG/installer.log)"
