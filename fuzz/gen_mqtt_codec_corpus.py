#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_mqtt_decode from the codec test vectors.

Reads every `.name = "..."` / `.bytes = bytes({...})` entry of
tests/unit/mqtt/codec/packet_vectors.hpp and writes corpus/fuzz_mqtt_decode/<kind>_<name>:
one configuration byte (see fuzz_mqtt_decode.cpp) followed by the vector's bytes. A few extra
seeds stream all valid vectors back to back with different chunking. Run it again after
changing the vectors:  python3 fuzz/gen_mqtt_codec_corpus.py
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests/unit/mqtt/codec/packet_vectors.hpp"
OUT = ROOT / "fuzz/corpus/fuzz_mqtt_decode"

# Must match max_sizes / chunk_sizes in fuzz_mqtt_decode.cpp.
MAX_SIZES = {None: 0, 2: 1, 8: 2, 16: 3, 64: 4, 256: 5, 1024: 6, 65536: 7}
CHUNKS = {"all": 0, 1: 1, 2: 2, 3: 3, 7: 4, 16: 5, 64: 6, 509: 7}
LEVEL_3_1 = 0x40
VIA_PREPARE = 0x80

ENTRY = re.compile(r'\.name = "(\w+)",\s*\.bytes = bytes\(\{(.*?)\}\)', re.S)
TOKEN = re.compile(r"0x[0-9a-fA-F]+|'(?:\\.|[^'\\])'|\b\d+\b")


def parse_bytes(text):
    text = re.sub(r"//[^\n]*", "", text)
    out = bytearray()
    for token in TOKEN.findall(text):
        if token.startswith("'"):
            out.append(ord(token[1:-1].encode().decode("unicode_escape")))
        else:
            out.append(int(token, 0))
    return bytes(out)


def config(max_size=None, chunk="all", level_3_1=False, via_prepare=False):
    value = MAX_SIZES[max_size] | CHUNKS[chunk] << 3
    if level_3_1:
        value |= LEVEL_3_1
    if via_prepare:
        value |= VIA_PREPARE
    return bytes([value])


def main():
    source = VECTORS.read_text()
    errors_at = source.index("error_vectors()")
    matches = list(ENTRY.finditer(source))
    seeds = {}
    valid_stream = b""
    for i, m in enumerate(matches):
        name, body = m.group(1), parse_bytes(m.group(2))
        rest = source[m.end() : matches[i + 1].start() if i + 1 < len(matches) else len(source)]
        level_3_1 = ".level = protocol_level::v3_1," in rest
        max_size = re.search(r"\.max_packet_size = (\d+)", rest)
        max_size = int(max_size.group(1)) if max_size else None
        kind = "error" if m.start() > errors_at else "valid"
        if kind == "valid":
            valid_stream += body
        seeds[f"{kind}_{name}"] = config(max_size, level_3_1=level_3_1) + body
    seeds["stream_all_valid"] = config() + valid_stream
    seeds["stream_all_valid_byte_by_byte"] = config(chunk=1) + valid_stream
    seeds["stream_all_valid_prepare_commit_7"] = config(chunk=7, via_prepare=True) + valid_stream
    seeds["stream_all_valid_level_3_1_max_64"] = config(64, chunk=16, level_3_1=True) + valid_stream

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for name, data in sorted(seeds.items()):
        (OUT / name).write_bytes(data)
    print(f"wrote {len(seeds)} seeds to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
