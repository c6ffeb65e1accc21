"""Pillow's time for what ImagePreprocessor.Prepare does after decoding: decode, RGB, shorter side to 256
(bilinear), central 256x256, as an array. Prints one line per image: '<path> <ms per image>'."""
import sys
import time
from io import BytesIO

import numpy as np
from PIL import Image

SIZE = 256


def prepare(data):
    im = Image.open(BytesIO(data)).convert("RGB")
    w, h = im.size
    s = SIZE / min(w, h)
    rw, rh = max(SIZE, round(w * s)), max(SIZE, round(h * s))
    im = im.resize((rw, rh), Image.BILINEAR)
    x, y = (rw - SIZE) // 2, (rh - SIZE) // 2
    return np.asarray(im.crop((x, y, x + SIZE, y + SIZE)))


def main():
    seconds = float(sys.argv[1])
    for path in sys.argv[2:]:
        data = open(path, "rb").read()
        for _ in range(20):
            prepare(data)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            prepare(data)
            n += 1
        print(f"{path} {1000 * (time.perf_counter() - start) / n:.3f} Pillow {Image.__version__}")


main()
