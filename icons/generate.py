"""Render portwatch's icons from the SVG drawings in this folder.

    python icons/generate.py           # (re)write every generated file
    python icons/generate.py --check   # exit 1 if a committed file is out of date

Writes, next to this script:
  png/portwatch-<N>.png  for N in 16, 24, 32, 48, 64, 128, 256, 512
  portwatch.ico          16-256 px, PNG payloads (Windows Vista and later read them)
  portwatch.icns         16-1024 px incl. @2x, PNG payloads (macOS 10.7 and later)
and copies the runtime icons the app loads through importlib.resources into
portwatch/resources/icons/.

Rendering uses PySide6's QtSvg (part of PySide6-Essentials); the ICO and ICNS containers are
simple enough to write here, so no image tool is needed.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNTIME_DIR = REPO / "portwatch" / "resources" / "icons"

APP_SVG = "portwatch.svg"
# The drawings the running app needs (tray states, macOS menu-bar masks, window icon).
RUNTIME_SVGS = (
    "portwatch.svg",
    "tray.svg",
    "tray-alert.svg",
    "tray-mask.svg",
    "tray-alert-mask.svg",
)
RUNTIME_PNG_SIZE = 256
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS element types with PNG payloads: (type, pixel size).
ICNS_TYPES = (
    (b"icp4", 16),
    (b"icp5", 32),
    (b"icp6", 64),
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),  # 512@2x
    (b"ic11", 32),  # 16@2x
    (b"ic12", 64),  # 32@2x
    (b"ic13", 256),  # 128@2x
    (b"ic14", 512),  # 256@2x
)


def render_png(svg: Path, size: int) -> bytes:
    """Render ``svg`` into a square ``size`` px PNG with an alpha channel."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG drawing")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"could not encode {svg} at {size} px as PNG")
    buffer.close()
    return bytes(data.data())


def build_ico(pngs: dict[int, bytes]) -> bytes:
    """An ICO container holding one PNG per size (ICONDIR, ICONDIRENTRY table, payloads)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))  # reserved, type 1 = icon, count
    offset = len(header) + 16 * len(sizes)
    entries = b""
    payload = b""
    for size in sizes:
        data = pngs[size]
        dim = 0 if size >= 256 else size  # 0 means 256 in the one-byte width/height fields
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset)
        payload += data
        offset += len(data)
    return header + entries + payload


def build_icns(pngs: dict[int, bytes]) -> bytes:
    """An ICNS container: 'icns' + total length, then (type, length incl. header, PNG) items."""
    body = b""
    for kind, size in ICNS_TYPES:
        data = pngs[size]
        body += kind + struct.pack(">I", len(data) + 8) + data
    return b"icns" + struct.pack(">I", len(body) + 8) + body


def outputs() -> dict[Path, bytes]:
    """Every generated file and its content."""
    app_svg = HERE / APP_SVG
    needed = set(PNG_SIZES) | set(ICO_SIZES) | {size for _, size in ICNS_TYPES}
    app_pngs = {size: render_png(app_svg, size) for size in sorted(needed)}
    files: dict[Path, bytes] = {}
    for size in PNG_SIZES:
        files[HERE / "png" / f"portwatch-{size}.png"] = app_pngs[size]
    files[HERE / "portwatch.ico"] = build_ico({s: app_pngs[s] for s in ICO_SIZES})
    files[HERE / "portwatch.icns"] = build_icns(app_pngs)
    for name in RUNTIME_SVGS:
        files[RUNTIME_DIR / name] = (HERE / name).read_bytes()
    files[RUNTIME_DIR / f"portwatch-{RUNTIME_PNG_SIZE}.png"] = app_pngs[RUNTIME_PNG_SIZE]
    return files


def _payloads(path: Path, data: bytes) -> list[bytes]:
    """The PNG images inside a generated file (the file itself for a PNG)."""
    if path.suffix == ".png":
        return [data]
    if path.suffix == ".ico":
        count = struct.unpack_from("<H", data, 4)[0]
        entries = [struct.unpack_from("<II", data, 6 + 16 * i + 8) for i in range(count)]
        return [data[offset : offset + length] for length, offset in entries]
    if path.suffix == ".icns":
        images, offset = [], 8
        while offset + 8 <= len(data):
            length = struct.unpack_from(">I", data, offset + 4)[0]
            images.append(data[offset + 8 : offset + length])
            offset += max(length, 8)
        return images
    return []


def same_content(path: Path, fresh: bytes) -> bool:
    """Whether the file at ``path`` holds what a fresh render made.

    Images are compared by pixels, not bytes: another Qt or zlib may encode the same picture
    differently, and that is not a reason to regenerate.
    """
    if not path.is_file():
        return False
    old = path.read_bytes()
    if old == fresh:
        return True
    from PySide6.QtGui import QImage

    old_images, new_images = _payloads(path, old), _payloads(path, fresh)
    if not new_images or len(old_images) != len(new_images):
        return False
    fmt = QImage.Format.Format_ARGB32
    return all(
        QImage.fromData(a).convertToFormat(fmt) == QImage.fromData(b).convertToFormat(fmt)
        for a, b in zip(old_images, new_images, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only report files that differ from a fresh render"
    )
    args = parser.parse_args(argv)

    # Rendering needs a QGuiApplication but never a screen.
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])
    files = outputs()
    stale = [
        path for path, data in files.items() if not path.is_file() or path.read_bytes() != data
    ]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(REPO)}")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[path])
        print(f"wrote {path.relative_to(REPO)} ({len(files[path])} bytes)")
    print(f"{len(files)} files, {len(stale)} updated")
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
