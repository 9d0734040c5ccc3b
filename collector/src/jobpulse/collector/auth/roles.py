"""Roles and principals are domain types (domain/principals.py); re-exported here for the auth layer."""

from __future__ import annotations

from jobpulse.collector.domain.principals import ALL_ROLES, Principal, Role, unknown_roles

__all__ = ["ALL_ROLES", "Principal", "Role", "unknown_roles"]
