#!/usr/bin/env bash
# The setup program under Wine: built with makensis, installed silently, checked, refused while
# portwatch runs, uninstalled silently. Called by scripts/windows-lane.sh with the prefix ready
# (WINEPREFIX exported, Windows Python in C:\py311); writes KIND|NAME|DETAIL lines to
# LOG/nsis.results.
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
ME="$(whoami)"
U="$C/users/$ME"
I="$U/AppData/Local/Programs/portwatch"
IW="C:\\users\\$ME\\AppData\\Local\\Programs\\portwatch"
LNK="$U/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/portwatch.lnk"
RUN='HKCU\Software\Microsoft\Windows\CurrentVersion\Run'
APPS='HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\portwatch'
AUMID='HKCU\Software\Classes\AppUserModelId\io.github.portwatch.Portwatch'
w() { nice -n 5 timeout "${T:-120}" wine "$@" </dev/null >/dev/null 2>&1; }
reg() { nice -n 5 timeout 60 wine reg "$@" </dev/null 2>/dev/null | tr -d '\r'; }
has_value() { reg query "$1" /v "$2" | grep -q "$2"; }

pay="$CACHE/nsis/payload"
rm -rf "$CACHE/nsis" && mkdir -p "$pay/_internal"
cp "$C/py311/pythonw.exe" "$pay/portwatch.exe" && cp "$C/py311/python.exe" "$pay/portwatch-cli.exe"
cp "$C"/py311/python311.dll "$C"/py311/python3.dll "$C"/py311/vcruntime140*.dll "$C/py311/python311.zip" "$pay/_internal/"
v="$(python3 "$PROJ/installer/buildinfo.py" version)"
v4="$(python3 "$PROJ/installer/buildinfo.py" nsis-version)"
setup="$CACHE/nsis/setup-amd64.exe"
if (cd "$PROJ/installer/windows" &&
  makensis -WX -V2 -DVERSION="$v" -DVERSION4="$v4" -DPAYLOAD="$pay" -DOUTFILE="$CACHE/nsis/setup-x86.exe" portwatch.nsi &&
  makensis -WX -V2 "-XTarget amd64-unicode" -DVERSION="$v" -DVERSION4="$v4" -DPAYLOAD="$pay" -DOUTFILE="$setup" portwatch.nsi) \
  >"$LOG/makensis.log" 2>&1; then
  out PASS nsis-compiles "x86 and amd64, warnings are errors"
else
  out FAIL nsis-compiles "see $LOG/makensis.log"
  exit 0
fi

T=180 w "$setup" /S
rc=$?
missing=()
for f in portwatch.exe portwatch-cli.exe uninstall.exe _internal/python311.dll; do [ -f "$I/$f" ] || missing+=("$f"); done
[ -f "$LNK" ] || missing+=("Start-menu shortcut")
has_value "$APPS" QuietUninstallString || missing+=("Apps entry")
has_value "$AUMID" DisplayName || missing+=("AppUserModelID registration")
if [ "$rc" = 0 ] && [ ${#missing[@]} = 0 ]; then
  out PASS nsis-silent-install "program files, Start-menu shortcut, Apps entry, AppUserModelID"
else
  out FAIL nsis-silent-install "exit $rc; missing: ${missing[*]:-nothing}"
fi

# portwatch running (the installed portwatch.exe, held open by Windows as a running image),
# with start at login switched on as the app's Settings would.
reg add "$RUN" /v portwatch /d "\"$IW\\portwatch.exe\" --minimized" /f >/dev/null
cat >"$C/lane/running.py" <<'PY'
import sys, time
open(sys.argv[1], "w").write("up")
time.sleep(60)
PY
rm -f "$C/lane/running.up"
WINEPATH="$IW\\_internal" nice -n 5 timeout 90 wine "$IW\\portwatch.exe" 'C:\lane\running.py' 'C:\lane\running.up' </dev/null >/dev/null 2>&1 &
RUNNING=$!
for _ in $(seq 150); do [ -s "$C/lane/running.up" ] && break; sleep 0.2; done
if [ ! -s "$C/lane/running.up" ]; then
  out FAIL nsis-running-copy "the installed portwatch.exe did not start"
else
  T=120 w "$setup" /S
  rc=$?
  [ "$rc" != 0 ] && out PASS nsis-reinstall-refused-while-running "setup exits $rc, files untouched" ||
    out FAIL nsis-reinstall-refused-while-running "setup exit 0 while portwatch.exe runs"
  T=120 w "$IW\\uninstall.exe" /S "_?=$IW"
  rc=$?
  if [ "$rc" != 0 ] && [ -f "$I/portwatch.exe" ] && [ -f "$LNK" ] && has_value "$APPS" QuietUninstallString; then
    out PASS nsis-uninstall-refused-while-running "uninstall exits $rc, install left whole"
  else
    out FAIL nsis-uninstall-refused-while-running "exit $rc; program $([ -f "$I/portwatch.exe" ] && echo kept || echo removed), shortcut $([ -f "$LNK" ] && echo kept || echo removed)"
  fi
fi
kill "$RUNNING" 2>/dev/null
wait "$RUNNING" 2>/dev/null
wineserver -w 2>/dev/null

# Not running: the silent uninstall removes everything it made, and the autostart value.
mkdir -p "$U/AppData/Roaming/portwatch" && echo "keep" >"$U/AppData/Roaming/portwatch/watchlist.txt"
T=120 w "$IW\\uninstall.exe" /S "_?=$IW"
rc=$?
left=()
# (uninstall.exe stays only because `_?=` runs it in place, which a silent test needs to wait.)
for f in portwatch.exe portwatch-cli.exe _internal; do [ -e "$I/$f" ] && left+=("$f"); done
[ -f "$LNK" ] && left+=("Start-menu shortcut")
has_value "$RUN" portwatch && left+=("Run value")
has_value "$APPS" DisplayName && left+=("Apps entry")
has_value "$AUMID" DisplayName && left+=("AppUserModelID registration")
if [ "$rc" = 0 ] && [ ${#left[@]} = 0 ] && [ -f "$U/AppData/Roaming/portwatch/watchlist.txt" ]; then
  out PASS nsis-silent-uninstall "program, shortcut, Run value, Apps entry and AppUserModelID removed; user data kept"
else
  out FAIL nsis-silent-uninstall "exit $rc; left: ${left[*]:-nothing}"
fi
rm -rf "$U/AppData/Roaming/portwatch" "$I"
