"""gzip answers made of parts compressed once: a cached page's series are deflated when first sent, and
each later answer deflates only the small parts around them.

Why: a job page's series are megabytes of JSON (5 MB for the web page of a 64-node day, 23 MB for
JobMon's answer). The compression middleware deflated them again on every request, which cost more than
everything else a cached view does. A finished job's series do not change while its page is cached, so
their deflated bytes are kept with them (services/page_series.py ``derived``), while metadata and tags,
which can change, are encoded and deflated per request.

How: a gzip member (RFC 1952) is a header, one DEFLATE stream (RFC 1951), and the CRC-32 and length of the
data. A DEFLATE stream is a sequence of blocks. A compressor flushed with Z_SYNC_FLUSH ends its output on a
byte boundary with a non-final block, and what a fresh compressor writes refers only to data it was given.
So parts deflated separately, each sync-flushed, followed by one final empty block, are one valid stream
of their concatenation. The CRC-32 is computed over the parts' bytes per answer (6 ms for 23 MB).

Routes answering through :func:`respond` set ``opt={PRECOMPRESSED: True}`` so that the middleware leaves
their answers alone (httpconf.compression excludes them).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

from litestar import MediaType, Request, Response

PRECOMPRESSED = "precompressed"  # route opt: the route compresses its own answers
LEVEL = 1  # as the middleware (httpconf.compression)
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # gzip, deflate, no name or flags, no mtime, OS unknown


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)  # raw DEFLATE: the gzip framing is added here
    return packer.compress(data) + packer.flush(zlib.Z_SYNC_FLUSH)


_FINAL = zlib.compressobj(LEVEL, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)  # one empty, final block


class Part:
    """Bytes of an answer with their deflated form, made once (a cached page keeps its parts)."""

    __slots__ = ("data", "deflated")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.deflated = _deflate(data)


def joined(parts: Sequence[bytes | Part]) -> bytes:
    """The answer itself: the parts' bytes one after the other."""
    return b"".join(p.data if isinstance(p, Part) else p for p in parts)


def gzip_joined(parts: Sequence[bytes | Part]) -> bytes:
    """The answer as one gzip member: kept parts' deflated bytes as they are, the others deflated now."""
    out = [_HEADER]
    crc = size = 0
    for part in parts:
        data, deflated = (part.data, part.deflated) if isinstance(part, Part) else (part, _deflate(part))
        out.append(deflated)
        crc = zlib.crc32(data, crc)
        size += len(data)
    out.append(_FINAL)
    out.append(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return b"".join(out)


def respond(
    request: Request[Any, Any, Any],
    parts: Sequence[bytes | Part],
    media_type: str = MediaType.JSON,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    """The answer made of ``parts``, gzip-compressed when the client accepts it (as the middleware would)."""
    out = {**(headers or {}), "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        out["Content-Encoding"] = "gzip"
        return Response(gzip_joined(parts), media_type=media_type, headers=out)
    return Response(joined(parts), media_type=media_type, headers=out)
