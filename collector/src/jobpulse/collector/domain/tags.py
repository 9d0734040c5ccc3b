"""A job tag: a user's label or an efficiency finding, shared by every run that carries it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag. Unique by (name, type); ``id`` stays stable while the tag exists (bookmarks, filters).

    ``type`` is who made it: "user" or "admin" (the tagger's role) or "finding" (the summary pass,
    ``created_by`` "jobpulse").
    """

    id: int
    name: str
    type: str
    created_by: str
