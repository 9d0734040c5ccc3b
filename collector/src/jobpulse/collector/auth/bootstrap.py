"""First start: make sure an admin exists, without ever using a fixed default password.

Runs once when the collector starts, before it serves, through the store's named account methods.
"""

from __future__ import annotations

import logging
import sys

from jobpulse.collector.auth.passwords import generate_password, hash_password, verify_password
from jobpulse.collector.auth.roles import Role
from jobpulse.collector.settings import CollectorSettings
from jobpulse.collector.store.base import AccountStore

log = logging.getLogger(__name__)


async def ensure_admin(store: AccountStore, settings: CollectorSettings) -> str | None:
    """Create/refresh the configured admin, or print a one-time password when there is no admin at all.

    Returns the generated one-time password, if one was made.
    """
    name = settings.admin_user
    if settings.admin_password:
        existing = await store.get_user(name)
        if existing is None or not verify_password(existing.password_hash, settings.admin_password):
            kept = existing.roles if existing is not None else ()
            roles = sorted(set(kept) | {Role.ADMIN.value, Role.USER.value})
            await store.save_admin_at_start(name, roles, hash_password(settings.admin_password))
            log.info("admin user %r set from configuration", name)
        return None
    if await store.count_admins() > 0:
        return None
    password = generate_password()
    await store.save_admin_at_start(name, [Role.ADMIN.value, Role.USER.value], hash_password(password))
    print(
        f"jobpulse-collector: created admin user {name!r} with one-time password: {password}\n"
        "  (shown only now; set admin_password in collector.toml or JOBPULSE_ADMIN_PASSWORD to choose one)",
        file=sys.stderr,
        flush=True,
    )
    return password
