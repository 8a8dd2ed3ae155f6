"""Registration, login and the caller's own profile."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from mongoengine import NotUniqueError

from webapp.auth import login_required
from webapp.courses import apply_pending_enrolments
from webapp.errors import ApiError, parse_body
from webapp.limits import LoginBackoff, limiter
from webapp.models import User
from webapp.openapi import operation, public_api
from webapp.responses import TokenOut, UserOut
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
@operation(
    public_api,
    tags=("accounts",),
    body=RegisterBody,
    ok={201: UserOut},
    errors={409: "`email_taken`", 429: "per client address"},
    security=None,
)
@limiter.limit(lambda: app_settings().rate_limit_register)
def register():
    """Create an account; courses that enrolled its e-mail beforehand enrol it now."""
    body = parse_body(RegisterBody)
    user = create_user(body.email, body.name, body.password)
    apply_pending_enrolments(user)
    return jsonify(user_json(user).json_body()), 201


def _login_backoff() -> LoginBackoff:
    settings = app_settings()
    return LoginBackoff(
        services().redis, settings.login_free_failures, settings.login_backoff_max_seconds
    )


@bp.post("/auth/login")
@operation(
    public_api,
    tags=("accounts",),
    body=LoginBody,
    ok={200: TokenOut},
    errors={
        401: "`invalid_credentials`",
        429: "per client address; `login_backoff` after repeated failures for one account",
    },
    security=None,
)
@limiter.limit(lambda: app_settings().rate_limit_login)
def login():
    """Sign in: a bearer token for the `Authorization` header."""
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
        TokenOut(
            access_token=token, token_type="Bearer", expires_in=settings.access_token_ttl_seconds
        ).json_body()
    )


@bp.get("/me")
@operation(public_api, tags=("accounts",), ok={200: UserOut})
@login_required()
def me():
    """The signed-in caller."""
    return jsonify(user_json(g.user).json_body())
