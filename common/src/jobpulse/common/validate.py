"""One validation of untrusted input, shared by every boundary (hook environment, agent socket, gRPC, HTTP).

Why one module: the same value crosses several boundaries (a prolog's ``SLURM_JOB_ID`` goes hook ->
agent socket -> spool -> gRPC -> SQLite), and each boundary used to check it its own way
(``str.isdigit()`` accepts ``²`` and ``٣``, ``int()`` accepts ``1_2`` and `` 7 ``). A value refused
late (by the collector) poisons delivery; refused early, with the field's name, it is only a bad field.

Every check raises :class:`InvalidField`, a ``ValueError`` that names the field, so callers can drop
the field, refuse the event, or answer a 400 that says which field was wrong.
"""

from __future__ import annotations

import re
from typing import Any, Final

UINT32_MAX: Final = 2**32 - 1
INT32_MAX: Final = 2**31 - 1
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
# Slurm job numbers are 32-bit (federated ids use the high bits, so the whole uint32 range occurs).
JOB_NUMBER_MAX: Final = UINT32_MAX
# Unix ids: uid_t/gid_t are 32-bit; (uid_t)-1 means "no user" and is never a real owner.
UNIX_ID_MAX: Final = UINT32_MAX - 1
# Seconds since the epoch that are plausible for a job (1970 .. year ~36,800): beyond, a typo or an attack.
EPOCH_SECONDS_MAX: Final = 2**40

_ASCII_INT = re.compile(r"-?[0-9]+\Z")
_ASCII_UINT = re.compile(r"[0-9]+\Z")
# Host names as Slurm and DNS allow them (RFC 1123 labels, dots; underscores occur on real clusters).
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z")
# Slurm hostlist expressions (node[001-004,7],gpu01): host name characters, brackets and commas.
_HOSTLIST = re.compile(r"[A-Za-z0-9._,\[\]-]+\Z")
# Opaque identifiers (GPU UUIDs and indices, MIG-GPU-<uuid>/1/0, SLUIDs, stream ids): no spaces, no '..'.
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._/-]*\Z")
# Unix user and group names: POSIX portable characters, plus '@' for directory-service (realm) names
# and a trailing '$' (Samba machine accounts).
_UNIX_NAME = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._@-]{0,255}\$?\Z")
# C0 and C1 controls, and the Unicode bidi controls that make a log line read differently from its bytes.
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class InvalidField(ValueError):
    """A value that is not what its field allows; ``field`` names it, ``reason`` says what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _show(value: Any, limit: int = 40) -> str:
    """The offending value for a message, shortened and with control characters escaped."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def integer(value: Any, field: str, low: int, high: int) -> int:
    """An integer within [low, high] from an int or a string of ASCII digits (optional leading '-').

    Refuses bools, floats, ``'1_2'``, ``' 7'``, ``'²'``, ``'٣'`` and ``'0x10'``: everything ``int()``
    would bend into a number that the sender did not write.
    """
    if isinstance(value, bool):
        raise InvalidField(field, f"expected an integer, got {_show(value)}")
    if isinstance(value, str):
        if not _ASCII_INT.match(value) or len(value) > 40:
            raise InvalidField(field, f"expected ASCII digits, got {_show(value)}")
        number = int(value)
    elif isinstance(value, int):
        number = value
    else:
        raise InvalidField(field, f"expected an integer, got {_show(value)}")
    if not low <= number <= high:
        raise InvalidField(field, f"{number} is out of range [{low}, {high}]")
    return number


def job_number(value: Any, field: str = "job_id") -> int:
    """A Slurm job number: 1 .. 2**32-1, written in ASCII digits when a string."""
    if isinstance(value, str) and not _ASCII_UINT.match(value):
        raise InvalidField(field, f"{_show(value)} is not a Slurm job number (ASCII digits)")
    return integer(value, field, 1, JOB_NUMBER_MAX)


def unix_id(value: Any, field: str) -> int:
    """A uid or gid (0 .. 2**32-2)."""
    return integer(value, field, 0, UNIX_ID_MAX)


def epoch_seconds(value: Any, field: str) -> int:
    """Seconds since the epoch, 0 meaning unknown."""
    return integer(value, field, 0, EPOCH_SECONDS_MAX)


def node_name(value: Any, field: str = "node") -> str:
    """A host name as Slurm allows it: no '/', NUL, spaces or path tricks, at most 255 characters."""
    if not isinstance(value, str) or not _NODE_NAME.match(value):
        raise InvalidField(field, f"{_show(value)} is not a host name (letters, digits, '.', '_', '-')")
    return value


def unix_name(value: Any, field: str) -> str:
    """A Unix user or group name."""
    if not isinstance(value, str) or not _UNIX_NAME.match(value):
        raise InvalidField(field, f"{_show(value)} is not a Unix user or group name")
    return value


def text(value: Any, field: str, max_length: int = 1024) -> str:
    """Free text shown to people (job name, account, partition): no control or bidi characters."""
    if not isinstance(value, str):
        raise InvalidField(field, f"expected a string, got {_show(value)}")
    if len(value) > max_length:
        raise InvalidField(field, f"longer than {max_length} characters")
    if _UNSAFE_TEXT.search(value):
        raise InvalidField(field, "contains control characters")
    return value


def hostlist(value: Any, field: str = "nodelist", max_length: int = 16384) -> str:
    """A Slurm hostlist expression such as ``node[001-004,7],gpu01``."""
    if not isinstance(value, str) or len(value) > max_length or not _HOSTLIST.match(value):
        raise InvalidField(field, f"{_show(value)} is not a Slurm hostlist (at most {max_length} characters)")
    return value


def identifier(value: Any, field: str, max_length: int = 96) -> str:
    """An opaque id (GPU UUID or index, SLUID, stream id): letters, digits and ``:._/-``, no ``..``."""
    if not isinstance(value, str) or len(value) > max_length or not _IDENTIFIER.match(value) or ".." in value:
        raise InvalidField(field, f"{_show(value)} is not an identifier (letters, digits, ':._/-')")
    return value


def safe_for_log(value: str, limit: int = 64) -> str:
    """A user-typed value fit for a log line: shortened and with controls escaped (never verbatim)."""
    return _show(value, limit)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth_ok(data: bytes, max_depth: int = 32) -> bool:
    """Whether a JSON document nests at most ``max_depth`` levels, checked before it is parsed.

    Why before: a 2 KB body of ``[[[[...`` makes a recursive parser raise RecursionError (a 500). Strings
    are cut out first (a bracket inside one is no nesting), then only brackets are visited, in C regex
    loops: a 256 KiB body costs well under a millisecond.
    """
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return False
        else:
            depth -= 1
    return True


__all__ = [
    "EPOCH_SECONDS_MAX",
    "INT32_MAX",
    "INT64_MAX",
    "JOB_NUMBER_MAX",
    "UINT32_MAX",
    "UINT64_MAX",
    "UNIX_ID_MAX",
    "InvalidField",
    "epoch_seconds",
    "hostlist",
    "identifier",
    "integer",
    "job_number",
    "json_depth_ok",
    "node_name",
    "safe_for_log",
    "text",
    "unix_id",
    "unix_name",
]
