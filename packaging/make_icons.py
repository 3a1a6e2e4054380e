"""Render the app icon SVG to the hicolor PNG sizes, a Windows .ico and a macOS .icns.

Run after changing resources/icons/app/consentdesk.svg; the outputs are committed:
    /tmp/venv/bin/python packaging/make_icons.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QGuiApplication, QImage, QImageWriter, QPainter
from PySide6.QtSvg import QSvgRenderer

ICON_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons" / "app"
SVG = ICON_DIR / "consentdesk.svg"
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render(renderer: QSvgRenderer, size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def write_ico(images: list[QImage], path: Path) -> None:
    """ICO with PNG-compressed entries (Vista+), written by hand: Qt's writer keeps one size."""
    header = (0).to_bytes(2, "little") + (1).to_bytes(2, "little")
    header += len(images).to_bytes(2, "little")
    directory = b""
    blobs = b""
    offset = 6 + 16 * len(images)
    for image in images:
        blob = png_bytes(image)
        side = image.width() if image.width() < 256 else 0  # 0 means 256 in ICO
        directory += bytes([side, side, 0, 0]) + (1).to_bytes(2, "little")
        directory += (32).to_bytes(2, "little") + len(blob).to_bytes(4, "little")
        directory += offset.to_bytes(4, "little")
        blobs += blob
        offset += len(blob)
    path.write_bytes(header + directory + blobs)


def main() -> int:
    QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        print(f"cannot read {SVG}", file=sys.stderr)
        return 1
    for size in HICOLOR_SIZES:
        target = ICON_DIR / "hicolor" / f"{size}x{size}" / "apps" / "consentdesk.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        render(renderer, size).save(str(target), "PNG")
    scalable = ICON_DIR / "hicolor" / "scalable" / "apps" / "consentdesk.svg"
    scalable.parent.mkdir(parents=True, exist_ok=True)
    scalable.write_bytes(SVG.read_bytes())
    write_ico([render(renderer, s) for s in ICO_SIZES], ICON_DIR / "consentdesk.ico")
    icns = QImageWriter(str(ICON_DIR / "consentdesk.icns"), QByteArray(b"icns"))
    if not icns.write(render(renderer, 512)):
        print(f"cannot write .icns: {icns.errorString()}", file=sys.stderr)
        return 1
    print(f"icons written under {ICON_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
