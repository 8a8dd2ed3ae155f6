"""Who is calling: the bearer token becomes `g.user`, and roles are enforced per route."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from flask import g, request

from webapp.errors import ApiError
from webapp.models import User
from webapp.security import user_id_from_access_token
from webapp.services import app_settings


def object_id_or_404(raw: str, what: str) -> ObjectId:
    """Malformed ids are simply unknown ones: the same 404, no hint about the format."""
    try:
        return ObjectId(raw)
    except (InvalidId, TypeError) as exc:
        raise ApiError(404, "not_found", f"{what} not found") from exc


def bearer_token() -> str | None:
    """The token of the request's `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None


def _current_user() -> User:
    token = bearer_token()
    if not token:
        raise ApiError(401, "unauthorized", "missing bearer token")
    user_id = user_id_from_access_token(token.strip(), app_settings().secret_key.get_secret_value())
    user = User.objects(id=user_id).first() if user_id and ObjectId.is_valid(user_id) else None
    if user is None:
        raise ApiError(401, "unauthorized", "invalid or expired token")
    return user


def login_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require a signed-in user, and one of `roles` when any are given."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            g.user = _current_user()
            if roles and g.user.role not in roles:
                raise ApiError(403, "forbidden", f"this action needs the role {' or '.join(roles)}")
            return view(*args, **kwargs)

        return wrapped

    return decorate
