"""Keep the daemon's resident memory to what it uses: glibc's malloc told to give freed memory back.

Importing asyncio, grpc and protobuf allocates and frees several MB of
temporary objects; glibc keeps freed pages inside its heap mapped (it only
returns the top of the heap on its own), so they count in the daemon's RSS
for its whole life. ``malloc_trim(0)`` hands them back: 4.6 MB of the 42.8 MB
after the agent's imports on the development machine (bench/RESULTS.md).
``limit_arenas`` caps glibc's per-thread arenas (grpc runs several threads) as
``MALLOC_ARENA_MAX=2`` does, for a daemon not started by the systemd unit.

Both are no-ops where the C library is not glibc (musl has neither call).
"""

from __future__ import annotations

import ctypes
import logging
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc <malloc.h>
TRIM_EVERY = 60  # ticks between trims after the first (each costs ~10-300 us)


def without_python_ssl() -> bool:
    """Keep Python's ssl module (and OpenSSL with it) out of this process; call before asyncio is imported.

    The daemon never uses it: gRPC's TLS is grpc's own, and asyncio imports
    ssl only to offer TLS streams, which the agent does not open (asyncio
    supports Pythons built without ssl). Saves ~4 MB of RSS. False when ssl
    is already imported (then nothing changes).
    """
    if "ssl" in sys.modules:
        return False
    sys.modules["ssl"] = None  # type: ignore[assignment]
    return True


def _libc_function(name: str) -> Callable[..., int] | None:
    try:
        return getattr(ctypes.CDLL(None), name)  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def limit_arenas(arenas: int = 2) -> bool:
    """Cap malloc arenas (call before threads start); False where not glibc."""
    mallopt = _libc_function("mallopt")
    return bool(mallopt is not None and mallopt(M_ARENA_MAX, arenas))


class Trimmer:
    """Trims after the second tick (the imports' and the connection's garbage), then every ``every``."""

    def __init__(self, every: int = TRIM_EVERY) -> None:
        self.every = every
        self._ticks = 0
        self._trim = _libc_function("malloc_trim")

    def tick(self) -> None:
        self._ticks += 1
        if self._trim is not None and (self._ticks - 2) % self.every == 0:
            self._trim(0)
