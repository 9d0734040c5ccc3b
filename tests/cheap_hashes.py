"""Password hashing at its lowest cost for in-process tests (used by tests/conftest.py).

argon2id at the product's cost (RFC 9106, ~0.1-0.16 s a hash or a check) made every login and every
fixture user a tenth of a second: most of the fast tier's time, in the unit and the contract tests
alike. In-process tests hash with the same algorithm at its lowest cost; test_auth.py checks the
product's own parameters with ``PRODUCT_HASHER``, and the integration tests' collector processes use
them throughout.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from jobpulse.collector.auth import passwords

PRODUCT_HASHER = passwords._hasher  # taken before any test patches it
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=256, parallelism=1)
