"""A run's stored summary and its efficiency findings, as the job page shows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One efficiency rule that fired for a run; ``rule`` is also the name of the run's finding tag.

    ``value`` is what was measured and ``threshold`` the rule's bound, so a user sees both what was wrong
    and by how much; ``hint`` says what to change.
    """

    rule: str
    value: float
    threshold: float
    hint: str


@dataclass(frozen=True)
class StoredSummary:
    """A run's summary as stored when the run ended, and the findings it raised.

    ``figures`` is the summary document (summary.py's ``JobSummary`` fields: efficiencies, peaks, hours,
    energy, per node and GPU, and ``metrics``) kept as the mapping it was stored as: summaries are kept
    for as long as their run, so an old one may lack a figure added since, and each dialect shows what is
    there rather than a type that would have to guess the missing ones.
    """

    figures: Mapping[str, Any]
    findings: tuple[Finding, ...] = ()

    @property
    def metrics(self) -> Mapping[str, Mapping[str, float | None]]:
        """Per stored job metric its ``mean``, ``max`` and ``limit`` where measured (the list's radar)."""
        found = self.figures.get("metrics")
        return found if isinstance(found, Mapping) else {}
