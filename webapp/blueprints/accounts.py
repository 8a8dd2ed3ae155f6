"""Registration, login and the caller's own profile."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from mongoengine import NotUniqueError

from webapp.auth import login_required
from webapp.errors import ApiError, parse_body
from webapp.limits import LoginBackoff, limiter
from webapp.models import User
from webapp.schemas import LoginBody, RegisterBody
from webapp.security import hash_password, issue_access_token, verify_password
from webapp.serializers import user_json
from webapp.services import app_settings, services

bp = Blueprint("accounts", __name__, url_prefix="/api")


def create_user(email: str, name: str, password: str, role: str = "student") -> User:
    """Raises ApiError 409 when the e-mail is taken (the unique index decides, not a pre-check)."""
    user = User(email=email, name=name, role=role, password_hash=hash_password(password))
    try:
        user.save()
    except NotUniqueError as exc:
        raise ApiError(409, "email_taken", "an account with this e-mail already exists") from exc
    return user


@bp.post("/auth/register")
@limiter.limit(lambda: app_settings().rate_limit_register)
def register():
    body = parse_body(RegisterBody)
    user = create_user(body.email, body.name, body.password)
    return jsonify(user_json(user)), 201


def _login_backoff() -> LoginBackoff:
    settings = app_settings()
    return LoginBackoff(
        services().redis, settings.login_free_failures, settings.login_backoff_max_seconds
    )


@bp.post("/auth/login")
@limiter.limit(lambda: app_settings().rate_limit_login)
def login():
    body = parse_body(LoginBody)
    backoff = _login_backoff()
    backoff.check(body.email)
    user = User.objects(email=body.email).first()
    if not verify_password(user.password_hash if user else None, body.password):
        backoff.failed(body.email)
        raise ApiError(401, "invalid_credentials", "wrong e-mail or password")
    backoff.succeeded(body.email)
    settings = app_settings()
    token = issue_access_token(
        str(user.id), settings.secret_key.get_secret_value(), settings.access_token_ttl_seconds
    )
    return jsonify(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": settings.access_token_ttl_seconds,
        }
    )


@bp.get("/me")
@login_required()
def me():
    return jsonify(user_json(g.user))
