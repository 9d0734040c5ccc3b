"""Answers joined from parts deflated at different times are one valid gzip member of their bytes."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest
from jobpulse.collector.api.gzipjoin import Part, gzip_joined, joined


@pytest.mark.parametrize("seed", range(6))
def test_parts_deflated_apart_decompress_to_the_whole(seed: int) -> None:
    rng = random.Random(seed)
    parts: list[bytes | Part] = []
    for _ in range(rng.randint(1, 6)):
        size = rng.choice([0, 1, 17, 70_000, 300_000])
        data = bytes(rng.choice(b'{}[],:"0123456789.e-null') for _ in range(size))
        parts.append(Part(data) if rng.random() < 0.5 else data)
    whole = joined(parts)
    packed = gzip_joined(parts)
    assert gzip.decompress(packed) == whole  # checks the CRC-32 and the length as well
    inflater = zlib.decompressobj(wbits=31)  # zlib's own gzip reader, as browsers use
    assert inflater.decompress(packed) + inflater.flush() == whole and inflater.eof
    assert not inflater.unused_data


def test_a_kept_part_is_copied_not_compressed_again() -> None:
    kept = Part(b"[" + b"1.5," * 100_000 + b"2]")
    first, second = gzip_joined([b'{"a":', kept, b"}"]), gzip_joined([b'{"a":', kept, b',"t":[]}'])
    assert kept.deflated in first and kept.deflated in second
    assert gzip.decompress(second) == b'{"a":' + kept.data + b',"t":[]}'
