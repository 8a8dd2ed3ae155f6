"""Users' secrets: password hashes and bearer tokens. (The internal API's scoped tokens are
part of the contract: runner_image.contract.tokens.)"""

from __future__ import annotations

import threading
import time
from functools import cache

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Argon2id with OWASP's minimum (19 MiB, 2 passes, 1 lane), and at most two hashes at once
# per process: eight concurrent logins at the library's default 64 MiB x 4 lanes would push
# a 512 MiB backend pod past its limit, and anyone can send a login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_hashing_slots = threading.BoundedSemaphore(2)
_JWT_ALGORITHM = "HS256"


@cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so login time does not reveal which
    accounts exist. Computed on first use, not at import."""
    return _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    with _hashing_slots:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        with _hashing_slots:
            return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def issue_access_token(user_id: str, secret: str, ttl_seconds: int) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl_seconds, "typ": "access"}
    return jwt.encode(claims, secret, algorithm=_JWT_ALGORITHM)


def user_id_from_access_token(token: str, secret: str) -> str | None:
    """The token's user id, or None when it is forged, expired or not an access token."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[_JWT_ALGORITHM], options={"require": ["exp", "sub"]}
        )
    except jwt.PyJWTError:
        return None
    return claims["sub"] if claims.get("typ") == "access" else None
