"""Draw the Teams app icons: color.png (192x192, full colour) and outline.png (32x32, white on transparent).

Our own geometric design (a shield with "sb" initials; a shield with a keyhole for the outline), drawn
with Pillow only: no fonts, no third-party artwork. Regenerate with

    .venv/bin/python manifest/teams/draw_icons.py

Rules followed (Microsoft's app package guidance): the colour icon is a solid square (Teams rounds the
corners itself) with the symbol in the middle and about 48 px of padding; the outline icon has only
pure white (255, 255, 255) pixels and fully transparent ones (alpha 0), nothing in between.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
ACCENT = (0x2F, 0x55, 0x97)  # keep equal to accentColor in manifest.json
WHITE = (255, 255, 255)

Point = tuple[float, float]


def _bezier(p0: Point, p1: Point, p2: Point, steps: int = 48) -> list[Point]:
    """Points on a quadratic Bezier curve from p0 to p2 pulled towards p1."""
    points = []
    for i in range(steps + 1):
        t = i / steps
        x = (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t**2 * p2[0]
        y = (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t**2 * p2[1]
        points.append((x, y))
    return points


def shield(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    """A shield outline inside the box: flat top with rounded shoulders, straight sides, a curved point."""
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    r = w * 0.14  # shoulder rounding
    side_end = y0 + h * 0.50
    outline: list[Point] = []
    outline += _bezier((x0, y0 + r), (x0, y0), (x0 + r, y0))  # top-left shoulder
    outline += _bezier((x1 - r, y0), (x1, y0), (x1, y0 + r))  # top-right shoulder
    outline.append((x1, side_end))
    outline += _bezier((x1, side_end), (x1, y0 + h * 0.82), (cx, y1))  # right side down to the point
    outline += _bezier((cx, y1), (x0, y0 + h * 0.82), (x0, side_end))  # back up the left side
    return outline


def _scaled(points: list[Point], k: float) -> list[Point]:
    return [(x * k, y * k) for x, y in points]


def draw_color(size: int = 192, supersample: int = 4) -> Image.Image:
    """Solid accent square, white shield, "sb" cut out of the shield in the accent colour."""
    k = supersample
    big = Image.new("RGB", (size * k, size * k), ACCENT)
    draw = ImageDraw.Draw(big)
    draw.polygon(_scaled(shield(46, 34, 146, 160), k), fill=WHITE)

    stroke = 7 * k
    baseline = 117 * k
    x_height = 30 * k
    # "s": two flat bowls of a thick elliptical arc sharing their middle stroke; the upper one is
    # open to the lower right, the lower one to the upper left.
    s_left, s_right = 68 * k, 91 * k
    bowl_h = x_height / 2 + stroke / 2
    upper = (s_left, baseline - x_height, s_right, baseline - x_height + bowl_h)
    lower = (s_left, baseline - bowl_h, s_right, baseline)
    draw.arc(upper, start=90, end=335, fill=ACCENT, width=stroke)
    draw.arc(lower, start=270, end=155, fill=ACCENT, width=stroke)
    # "b": a stem and a round bowl resting on the baseline.
    bx = 96 * k
    draw.rectangle((bx, baseline - 50 * k, bx + stroke, baseline), fill=ACCENT)
    bowl = 14 * k  # outer radius
    draw.ellipse((bx, baseline - 2 * bowl, bx + 2 * bowl, baseline), outline=ACCENT, width=stroke)
    return big.resize((size, size), Image.Resampling.LANCZOS)


def draw_outline(size: int = 32, supersample: int = 8) -> Image.Image:
    """A white shield outline with a keyhole, on a fully transparent background; two-level alpha only."""
    k = supersample
    mask = Image.new("L", (size * k, size * k), 0)
    draw = ImageDraw.Draw(mask)
    draw.polygon(_scaled(shield(5, 2, 27, 30), k), fill=255)
    draw.polygon(_scaled(shield(7.6, 4.6, 24.4, 26.4), k), fill=0)  # hollow it: about 2.5 px of border
    cx, cy, r = 16 * k, 13 * k, 3.2 * k
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
    draw.polygon([(cx - 1.3 * k, cy), (cx + 1.3 * k, cy), (cx + 2.2 * k, 21.5 * k), (cx - 2.2 * k, 21.5 * k)], fill=255)
    small = mask.resize((size, size), Image.Resampling.BOX).point(lambda v: 255 if v >= 128 else 0)
    icon = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    icon.paste(Image.new("RGBA", (size, size), (*WHITE, 255)), (0, 0), small)
    return icon


def main() -> None:
    draw_color().save(HERE / "color.png", optimize=True)
    draw_outline().save(HERE / "outline.png", optimize=True)


if __name__ == "__main__":
    main()
