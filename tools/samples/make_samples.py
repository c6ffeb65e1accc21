#!/usr/bin/python3
"""Writes models/samples/: the first N Fashion-MNIST test images of each class as 28x28 grey PNGs, and samples.json
(file, label, test-set index). Standard library only (gzip, zlib, struct), so it runs wherever Python 3 does.

    /usr/bin/python3 tools/samples/make_samples.py /usr/share/datasets/fashion-mnist models/samples 5

Fashion-MNIST (Zalando Research, https://github.com/zalandoresearch/fashion-mnist) is MIT-licensed; the Debian
package dataset-fashion-mnist ships its IDX files."""
import gzip, json, os, struct, sys, zlib

LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def slug(label):
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-")


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 2049:   # labels
        return list(data[8:8 + count])
    rows, cols = struct.unpack(">II", data[8:16])
    size = rows * cols
    return [(rows, cols, data[16 + i * size:16 + (i + 1) * size]) for i in range(count)]


def png(width, height, grey):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + grey[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main(source, out, per_class):
    images = read_idx(os.path.join(source, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(source, "t10k-labels-idx1-ubyte.gz"))
    items, taken = [], [0] * len(LABELS)
    for index, (label, (rows, cols, pixels)) in enumerate(zip(labels, images)):
        if taken[label] >= per_class:
            continue
        taken[label] += 1
        name = f"{slug(LABELS[label])}-{taken[label]}"
        os.makedirs(os.path.join(out, slug(LABELS[label])), exist_ok=True)
        file = f"{slug(LABELS[label])}/{name}.png"
        with open(os.path.join(out, file), "wb") as f:
            f.write(png(cols, rows, pixels))
        items.append({"file": file, "label": LABELS[label], "testIndex": index})
        if min(taken) >= per_class:
            break
    manifest = {
        "source": "Fashion-MNIST test set (t10k), the first %d images of each class; Zalando Research, MIT licence, "
                  "https://github.com/zalandoresearch/fashion-mnist" % per_class,
        "items": items,
    }
    with open(os.path.join(out, "samples.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(items)} samples to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5)
