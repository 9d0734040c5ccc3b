"""Slurm hostlists (``node[001-004,007]``) <-> node names, through python-hostlist.

Why here: a job's nodes come from four sources (the agents that sample it, the prolog's
``SLURM_NODELIST``, the REST start's ``Nodes`` and the reconciler's ``nodes``), two of which are
compressed hostlists; the job's node list is their union, expanded, so one node filter works for all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import hostlist

log = logging.getLogger(__name__)

MAX_NODES = 100_000  # a hostlist like n[0-99999999] is refused rather than expanded into memory


# What Slurm prints for the node list of a job that never got nodes (sacct and squeue: "None assigned"
# for a job cancelled while pending, seen on the test cluster; "(null)" in some formats): no node.
NO_NODES = frozenset({"None assigned", "(null)"})


def expand(expression: str) -> list[str]:
    """The node names of one hostlist expression; an unparsable one is kept whole (and logged)."""
    expression = expression.strip()
    if not expression or expression in NO_NODES:
        return []
    if "[" not in expression and "," not in expression:
        return [expression]
    try:
        names: list[str] = hostlist.expand_hostlist(expression)
    except hostlist.BadHostlist as exc:
        log.warning("cannot expand hostlist %r: %s", expression[:200], exc)
        return [expression]
    if len(names) > MAX_NODES:
        log.warning("hostlist %r expands to %d names; kept unexpanded", expression[:200], len(names))
        return [expression]
    return names


def expand_all(expressions: Iterable[str]) -> list[str]:
    """The union of several expressions' names, sorted as Slurm sorts hostlists."""
    names: set[str] = set()
    for expression in expressions:
        names.update(expand(expression))
    return sort(names)


def sort(names: Iterable[str]) -> list[str]:
    """Node names in Slurm's order (``n2`` before ``n10``)."""
    unique = list(dict.fromkeys(names))
    try:
        ordered: list[str] = hostlist.numerically_sorted(unique)
    except Exception:  # python-hostlist's sort is best effort; never fail a write over ordering
        ordered = sorted(unique)
    return ordered


def compress(names: Iterable[str]) -> str:
    """A Slurm hostlist expression for ``names`` (``n[1-3]``)."""
    unique = sort(names)
    if not unique:
        return ""
    try:
        return str(hostlist.collect_hostlist(unique))
    except Exception:
        return ",".join(unique)
