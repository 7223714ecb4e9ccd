#!/usr/bin/env bash
# Build portwatch.app into a disk image on macOS, optionally signed and notarized.
# Runs on macOS only (hdiutil, codesign, notarytool). Builds first unless the app exists.
#
#   installer/macos/make_dmg.sh [PYTHON]
#
# A maintainer fills in, as environment variables (nothing secret lives in the repository):
#   CODESIGN_IDENTITY  "Developer ID Application: Your Name (TEAMID1234)"  (security find-identity
#                      -v -p codesigning lists yours). Unset: an unsigned image for local tests;
#                      macOS will then refuse to open it from a download without a right-click.
#   NOTARY_PROFILE     a notarytool keychain profile, stored once with
#                        xcrun notarytool store-credentials portwatch-notary \
#                          --apple-id you@example.com --team-id TEAMID1234 --password <app-specific>
#                      Unset: signed but not notarized.
#   ENTITLEMENTS       optional .plist of hardened-runtime entitlements (none are needed today).
#
# Output: installer/out/portwatch-<version>-macos-<arch>.dmg (the path is the last line printed).
set -euo pipefail

if [ "$(uname -s)" != "Darwin" ]; then
    echo "make_dmg.sh: runs on macOS only (needs hdiutil and codesign)" >&2
    exit 2
fi

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${1:-${PYTHON:-python3}}"
OUT="$REPO/installer/out"
APP="$OUT/dist/portwatch.app"
VERSION="$("$PYTHON" "$REPO/installer/buildinfo.py" version)"
APP_ID="$("$PYTHON" "$REPO/installer/buildinfo.py" app-id)"
DMG="$OUT/portwatch-$VERSION-macos-$(uname -m).dmg"

if [ ! -d "$APP" ]; then
    "$PYTHON" -m PyInstaller --noconfirm --clean --distpath "$OUT/dist" --workpath "$OUT/build" \
        "$REPO/installer/portwatch.spec"
fi

# The bundle must say who it is: notifications only work from a bundle with this id.
plist="$APP/Contents/Info.plist"
test "$(/usr/libexec/PlistBuddy -c 'Print :CFBundleIdentifier' "$plist")" = "$APP_ID"
test "$(/usr/libexec/PlistBuddy -c 'Print :LSUIElement' "$plist")" = "true"
test "$(/usr/libexec/PlistBuddy -c 'Print :NSUserNotificationAlertStyle' "$plist")" = "alert"
test "$(/usr/libexec/PlistBuddy -c 'Print :CFBundleShortVersionString' "$plist")" = "$VERSION"

sign() {
    local args=(--force --timestamp --options runtime --sign "$CODESIGN_IDENTITY")
    if [ -n "${ENTITLEMENTS:-}" ]; then args+=(--entitlements "$ENTITLEMENTS"); fi
    codesign "${args[@]}" "$@"
}

# Mach-O by its first four bytes (thin 32/64-bit either byte order, or universal): any such
# file keeps PyInstaller's ad-hoc signature unless signed here, and notarization rejects it,
# whatever its name (not only *.so and *.dylib).
is_macho() {
    case "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" in
    cffaedfe | cefaedfe | feedfacf | feedface | cafebabe | bebafeca) return 0 ;;
    esac
    return 1
}

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    # Inside out: every Mach-O file, then the Qt frameworks, then the bundle (no --deep, which
    # Apple advises against because it signs with one set of options everything it finds).
    find "$APP/Contents" -type f ! -path "$APP/Contents/MacOS/portwatch" -print0 |
        while IFS= read -r -d '' file; do if is_macho "$file"; then sign "$file"; fi; done
    find "$APP/Contents" -type d -name '*.framework' -prune -print0 |
        while IFS= read -r -d '' framework; do sign "$framework"; done
    sign "$APP/Contents/MacOS/portwatch"
    sign "$APP"
    # --deep here only verifies: every nested signature must hold, as Gatekeeper checks them.
    codesign --verify --deep --strict --verbose=2 "$APP"
    if [ -n "${NOTARY_PROFILE:-}" ]; then
        # The app itself is notarized and stapled too, so the copy dragged to Applications
        # opens offline on its first launch (a ticket stapled to the disk image stays there).
        APPZIP="$(mktemp -d)/portwatch.zip"
        ditto -c -k --keepParent "$APP" "$APPZIP"
        xcrun notarytool submit "$APPZIP" --keychain-profile "$NOTARY_PROFILE" --wait
        xcrun stapler staple "$APP"
        spctl --assess --type execute --verbose=2 "$APP"
        rm -rf "$(dirname "$APPZIP")"
    fi
else
    echo "CODESIGN_IDENTITY not set: building an UNSIGNED disk image (for local testing only)"
fi

STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "portwatch $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"

if [ -n "${CODESIGN_IDENTITY:-}" ]; then
    codesign --force --timestamp --sign "$CODESIGN_IDENTITY" "$DMG"
    if [ -n "${NOTARY_PROFILE:-}" ]; then
        xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
        xcrun stapler staple "$DMG"
        spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
    else
        echo "NOTARY_PROFILE not set: signed but NOT notarized (Gatekeeper will warn on download)"
    fi
fi
echo "$DMG"
