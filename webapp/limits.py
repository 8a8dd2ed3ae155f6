"""Rate limits (Flask-Limiter, counted in Redis so every worker and pod shares them) and the
login back-off.

- per client address: login, register, submit (what one machine may send);
- per account: submit (by the signed-in user);
- per account for logins: failures back off exponentially instead of locking the account,
  so a guesser is slowed to a crawl but nobody can lock a student out for long.

Every refusal is a 429 in the API's error envelope with `Retry-After`. The client address
is the peer's, or, behind TRUSTED_PROXY_HOPS proxies (the Ingress), the one they report.
"""

from __future__ import annotations

import math
import time

from flask import Flask, g, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from redis import Redis
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.errors import ApiError, error_response
from webapp.settings import WebappSettings

LOGIN_FAILURES_KEY = "login-failures:{email}"
LOGIN_BLOCKED_KEY = "login-blocked:{email}"


def client_address() -> str:
    return request.remote_addr or "unknown"


def signed_in_user() -> str:
    """Per-account limits run after authentication (login_required sets g.user)."""
    user = g.get("user")
    return f"user:{user.id}" if user is not None else f"address:{client_address()}"


# Its own headers are off: every 429 carries the Retry-After this module sets.
limiter = Limiter(key_func=client_address, headers_enabled=False)


def install_limits(app: Flask, settings: WebappSettings) -> None:
    if settings.trusted_proxy_hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops)  # type: ignore[method-assign]
    app.config["RATELIMIT_STORAGE_URI"] = settings.rate_limit_storage_uri or settings.redis_url
    app.config["RATELIMIT_ENABLED"] = settings.rate_limits_enabled
    limiter.init_app(app)

    @app.errorhandler(RateLimitExceeded)
    def _rate_limited(exc: RateLimitExceeded):
        window = limiter.current_limit
        retry_after = max(1, math.ceil(window.reset_at - time.time())) if window is not None else 60
        response, status = error_response(
            429,
            "rate_limited",
            f"too many requests ({exc.description}); retry after {retry_after} s",
            {"retry_after_seconds": retry_after},
        )
        response.headers["Retry-After"] = str(retry_after)
        return response, status


class LoginBackoff:
    """Failed logins of one account: the first FREE ones cost nothing; each further one
    blocks the next attempt for twice as long as the last (1 s, 2 s, 4 s ... at most MAX
    seconds). A successful login clears it."""

    def __init__(self, redis: Redis, free_failures: int, max_seconds: int) -> None:
        self.redis = redis
        self.free_failures = free_failures
        self.max_seconds = max_seconds

    def check(self, email: str) -> None:
        """Raises 429 while the account is backing off."""
        remaining = self.redis.pttl(LOGIN_BLOCKED_KEY.format(email=email))
        if remaining and remaining > 0:
            seconds = max(1, math.ceil(remaining / 1000))
            raise ApiError(
                429,
                "login_backoff",
                f"too many failed logins for this account; retry after {seconds} s",
                {"retry_after_seconds": seconds},
                headers={"Retry-After": str(seconds)},
            )

    def failed(self, email: str) -> None:
        failures = self.redis.incr(LOGIN_FAILURES_KEY.format(email=email))
        self.redis.expire(LOGIN_FAILURES_KEY.format(email=email), self.max_seconds * 4)
        beyond = failures - self.free_failures
        if beyond > 0:
            seconds = min(2 ** (beyond - 1), self.max_seconds)
            self.redis.set(LOGIN_BLOCKED_KEY.format(email=email), 1, ex=seconds)

    def succeeded(self, email: str) -> None:
        self.redis.delete(
            LOGIN_FAILURES_KEY.format(email=email), LOGIN_BLOCKED_KEY.format(email=email)
        )
