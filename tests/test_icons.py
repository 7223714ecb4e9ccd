"""The packaged icons: present, loadable by Qt, the alert state distinct in shape."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from PySide6.QtCore import QByteArray, QSize
from PySide6.QtGui import QIcon, QImage, QPixmap

from portwatch import resources

REPO = Path(__file__).resolve().parents[1]
SOURCE_ICONS = REPO / "icons"


def _pixmap(name: str, size: int) -> QImage:
    data = resources.read_icon(name)
    pixmap = QPixmap()
    assert pixmap.loadFromData(QByteArray(data)), f"Qt could not decode {name}"
    icon = QIcon(pixmap) if name.endswith(".png") else QIcon(str(resources.icon_path(name)))
    image = icon.pixmap(QSize(size, size)).toImage()
    return image.convertToFormat(QImage.Format.Format_ARGB32)


def _opaque_mask(image: QImage) -> list[bool]:
    """Which pixels are drawn at all: the silhouette, independent of colour."""
    return [
        image.pixelColor(x, y).alpha() >= 128
        for y in range(image.height())
        for x in range(image.width())
    ]


@pytest.mark.parametrize("name", sorted(resources.ICON_NAMES))
def test_every_packaged_icon_loads_offscreen(qapp: object, name: str) -> None:
    assert resources.icon_path(name).is_file()
    image = _pixmap(name, 16)
    assert image.width() == 16
    assert any(_opaque_mask(image)), f"{name} renders empty at 16 px"


def test_unknown_icon_names_are_refused() -> None:
    with pytest.raises(ValueError, match="no packaged icon"):
        resources.icon_path("../__init__.py")


@pytest.mark.parametrize(
    ("normal", "alert"),
    [
        (resources.TRAY_ICON, resources.TRAY_ALERT_ICON),
        (resources.TRAY_MASK_ICON, resources.TRAY_ALERT_MASK_ICON),
    ],
)
def test_alert_tray_icon_differs_in_shape_not_only_colour(
    qapp: object, normal: str, alert: str
) -> None:
    for size in (16, 32):
        before = _opaque_mask(_pixmap(normal, size))
        after = _opaque_mask(_pixmap(alert, size))
        changed = sum(a != b for a, b in zip(before, after, strict=True))
        # A colour swap would leave the silhouette identical; demand a visible share of it move.
        assert changed >= size * size // 10, f"{alert} at {size} px: only {changed} px differ"


def test_mask_icons_are_monochrome(qapp: object) -> None:
    for name in (resources.TRAY_MASK_ICON, resources.TRAY_ALERT_MASK_ICON):
        image = _pixmap(name, 32)
        colours = {
            image.pixelColor(x, y).rgb() & 0xFFFFFF
            for y in range(image.height())
            for x in range(image.width())
            if image.pixelColor(x, y).alpha() > 0
        }
        assert colours == {0}, f"{name} must be black on transparent; found {colours}"


def test_ico_container_holds_png_images_16_to_256() -> None:
    data = (SOURCE_ICONS / "portwatch.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data, 0)
    assert (reserved, kind) == (0, 1)
    sizes = []
    for index in range(count):
        width, height, _, _, planes, bpp, length, offset = struct.unpack_from(
            "<BBBBHHII", data, 6 + 16 * index
        )
        assert width == height
        assert (planes, bpp) == (1, 32)
        payload = data[offset : offset + length]
        assert payload.startswith(b"\x89PNG\r\n\x1a\n")
        image = QImage.fromData(payload)
        assert image.width() == (width or 256)
        sizes.append(width or 256)
    assert sizes[0] == 16
    assert sizes[-1] == 256


def test_icns_container_is_well_formed() -> None:
    data = (SOURCE_ICONS / "portwatch.icns").read_bytes()
    assert data[:4] == b"icns"
    assert struct.unpack_from(">I", data, 4)[0] == len(data)
    offset, kinds = 8, {}
    while offset < len(data):
        kind = data[offset : offset + 4]
        length = struct.unpack_from(">I", data, offset + 4)[0]
        payload = data[offset + 8 : offset + length]
        assert payload.startswith(b"\x89PNG\r\n\x1a\n"), kind
        kinds[kind] = QImage.fromData(payload).width()
        offset += length
    assert offset == len(data)
    assert kinds[b"ic07"] == 128
    assert kinds[b"ic10"] == 1024
    assert kinds[b"icp4"] == 16


def test_runtime_copies_match_the_source_drawings() -> None:
    # The package carries copies made by icons/generate.py; an edited drawing must be re-copied.
    runtime = REPO / "portwatch" / "resources" / "icons"
    if not runtime.is_dir():
        pytest.skip("not running from a source checkout")
    for name in sorted(resources.ICON_NAMES):
        if name.endswith(".svg"):
            assert (runtime / name).read_bytes() == (SOURCE_ICONS / name).read_bytes(), (
                f"{name} differs from icons/{name}: run `python icons/generate.py`"
            )
