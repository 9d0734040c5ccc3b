"""First start: make sure an admin exists, without ever using a fixed default password."""

from __future__ import annotations

import logging
import sqlite3
import sys

from jobpulse.collector.auth.passwords import generate_password, hash_password, verify_password
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store import users

log = logging.getLogger(__name__)


def ensure_admin(db: sqlite3.Connection, settings: CollectorSettings) -> str | None:
    """Create/refresh the configured admin, or print a one-time password when there is no admin at all.

    Returns the generated one-time password, if one was made.
    """
    name = settings.admin_user
    if settings.admin_password:
        existing = users.get_user(db, name)
        if existing is None or not verify_password(existing["password_hash"], settings.admin_password):
            roles = sorted(set((existing or {}).get("roles", [])) | {Role.ADMIN.value, Role.USER.value})
            users.upsert_user(db, name, roles, hash_password(settings.admin_password))
            log.info("admin user %r set from configuration", name)
        return None
    if users.count_admins(db) > 0:
        return None
    password = generate_password()
    users.upsert_user(db, name, [Role.ADMIN.value, Role.USER.value], hash_password(password))
    print(
        f"jobpulse-collector: created admin user {name!r} with one-time password: {password}\n"
        "  (shown only now; set admin_password in collector.toml or JOBPULSE_ADMIN_PASSWORD to choose one)",
        file=sys.stderr,
        flush=True,
    )
    return password
