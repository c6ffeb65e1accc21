#!/usr/bin/python3
"""Sets one key of an ONNX model's alexnet.provenance metadata (JSON) in place, leaving every other byte of the
ModelProto as it was. Standard library only: it walks the top-level protobuf fields and rewrites field 14
(metadata_props) entries, so it needs neither onnx nor protobuf.

    /usr/bin/python3 tools/samples/set_provenance.py models/fashion-mnist-compact.onnx domain "..."

Used once to add "domain" to the bundled demo model, whose checkpoint is not in the repository; a model exported by
the worker since then carries it already when trained on Fashion-MNIST (or given export --domain)."""
import json, sys


def varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]; i += 1
        value |= (b & 0x7F) << shift; shift += 7
        if not b & 0x80:
            return value, i


def enc_varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F; v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fields(buf):
    i = 0
    while i < len(buf):
        start = i
        tag, i = varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, i = varint(buf, i); body = None
        elif wire == 2:
            n, i = varint(buf, i); body = buf[i:i + n]; i += n
        elif wire == 1:
            i += 8; body = None
        elif wire == 5:
            i += 4; body = None
        else:
            raise ValueError(f"wire type {wire} at byte {start}")
        yield number, wire, body, buf[start:i]


def entry(key, value):
    k, v = key.encode(), value.encode()
    body = b"\x0a" + enc_varint(len(k)) + k + b"\x12" + enc_varint(len(v)) + v
    return b"\x72" + enc_varint(len(body)) + body   # field 14, length-delimited


def main(path, key, value):
    buf = open(path, "rb").read()
    out, found = bytearray(), False
    for number, wire, body, raw in fields(buf):
        if number == 14 and wire == 2:
            kv = {n: b for n, _, b, _ in fields(body)}
            if kv.get(1) == b"alexnet.provenance":
                provenance = json.loads(kv[2].decode())
                provenance[key] = value
                out += entry("alexnet.provenance", json.dumps(provenance, ensure_ascii=False, separators=(",", ":")))
                found = True
                continue
        out += raw
    if not found:
        sys.exit(f"{path} has no alexnet.provenance metadata")
    open(path, "wb").write(bytes(out))
    print(f"{path}: provenance.{key} set")


if __name__ == "__main__":
    main(*sys.argv[1:4])
