"""Hostile and broken input, second round (issue 23): every read bounded, every path confined, no run lost.

Most faults here need no memory figure (they are refused before anything large exists); those that
do run in a subprocess that measures peak memory growth, as tests/test_untrusted_input.py does.
"""

from __future__ import annotations

import gzip
import random

import pytest

from inside_core.data.errors import DataError


# ------------------------------------------------------------------------ gzip members at chunk edges
def _stored_member(size: int, rng: random.Random) -> bytes:
    """A gzip member (stored blocks, so its length is exact) of `size` bytes in all."""
    payload = rng.randbytes(size)
    for length in range(size - 18, size - 64, -1):  # less the header, trailer and block headers
        member = gzip.compress(payload[:length], compresslevel=0, mtime=0)
        if len(member) == size:
            return member
    raise AssertionError(f"no stored member of {size} bytes")


@pytest.mark.parametrize("offset", [-9, -8, -1, 0, 1, 8, 9])
@pytest.mark.parametrize("padding", [0, 3])
def test_multi_member_gzip_reads_bit_identically_at_every_chunk_boundary(offset, padding):
    from inside_core.data.safe_io import _INFLATE_CHUNK, inflate_gzip

    rng = random.Random(offset * 7 + padding)
    # the first member ends `offset` bytes from the first chunk's end (its trailer or the next member's
    # header split across it), the second ends at the second chunk's end; zero padding between members
    first = _stored_member(_INFLATE_CHUNK + offset, rng)
    second = _stored_member(_INFLATE_CHUNK - offset - padding, rng)
    third = gzip.compress(b"the last member" * 50, mtime=0)
    data = first + b"\0" * padding + second + third + b"\0" * padding
    expected = gzip.decompress(data)
    assert inflate_gzip(data, "multi.nii.gz", len(expected) + 100) == expected
    assert inflate_gzip(data, "multi.nii.gz", 1000) == expected[:1000]  # still stops at the limit


def test_gzip_garbage_after_a_member_is_one_line():
    from inside_core.data.safe_io import inflate_gzip

    data = gzip.compress(b"x" * 100) + b"not gzip"
    with pytest.raises(DataError, match=r"^bad\.gz: not a readable gzip file"):
        inflate_gzip(data, "bad.gz", 10**6)
