# Generates edgecap's icons: a yellow speech bubble holding a black eye, on black.
from PIL import Image, ImageDraw
import math, sys
OUT = sys.argv[1]
BG = (0, 0, 0, 255); FG = (255, 212, 0, 255); INK = (0, 0, 0, 255)

def glyph(size, scale):
    """Draw at 4x then downsample. scale: fraction of the canvas the bubble spans."""
    S = size * 4
    im = Image.new('RGBA', (S, S), BG)
    d = ImageDraw.Draw(im)
    c = S / 2
    w = S * scale; h = w * 0.72
    x0, y0 = c - w / 2, c - h / 2 - S * scale * 0.06
    x1, y1 = x0 + w, y0 + h
    r = h * 0.32
    d.rounded_rectangle([x0, y0, x1, y1], radius=r, fill=FG)
    # the bubble's tail, bottom left
    tx = x0 + w * 0.22
    d.polygon([(tx, y1 - 2), (tx + w * 0.2, y1 - 2), (tx - w * 0.06, y1 + h * 0.3)], fill=FG)
    # the eye: almond of two arcs, iris, pupil highlight
    ew = w * 0.66; eh = h * 0.5
    ex0, ey0 = c - ew / 2, (y0 + y1) / 2 - eh / 2
    pts_top, pts_bot = [], []
    for i in range(101):
        t = i / 100
        x = ex0 + ew * t
        yoff = math.sin(math.pi * t) * eh / 2
        pts_top.append((x, ey0 + eh / 2 - yoff))
        pts_bot.append((x, ey0 + eh / 2 + yoff))
    d.polygon(pts_top + pts_bot[::-1], fill=INK)
    ir = eh * 0.36
    cx, cy = c, ey0 + eh / 2
    d.ellipse([cx - ir, cy - ir, cx + ir, cy + ir], fill=FG)
    pr = ir * 0.5
    d.ellipse([cx - pr, cy - pr, cx + pr, cy + pr], fill=INK)
    hr = pr * 0.35
    d.ellipse([cx + pr * 0.2, cy - pr * 0.75, cx + pr * 0.2 + 2 * hr, cy - pr * 0.75 + 2 * hr], fill=FG)
    return im.resize((size, size), Image.LANCZOS).convert('RGB')

glyph(192, 0.82).save(f'{OUT}/icon-192.png', optimize=True)
glyph(512, 0.82).save(f'{OUT}/icon-512.png', optimize=True)
glyph(512, 0.62).save(f'{OUT}/icon-maskable-512.png', optimize=True)   # inside the 80% safe circle
glyph(180, 0.74).save(f'{OUT}/apple-touch-icon.png', optimize=True)    # iOS rounds the corners itself
