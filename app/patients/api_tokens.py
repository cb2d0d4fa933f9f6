"""JSON API tokens scoped to a program (issue 11 item 1: "API tokens scoped the same way" as staff).

A token is ``otk_`` + 43 URL-safe characters (32 random bytes); only its SHA-256 hex digest is stored, so
a copy of the database holds no usable token. A request with a program token sees and changes only that
program's patients (403 otherwise); ``read`` tokens may only GET.

The deployment's single ``API_TOKEN`` (config) still works as before, as the global admin token: every
program, every endpoint (creating and changing programs included). Leave it unset to allow only
program tokens.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ApiToken, Program, utcnow

TOKEN_PREFIX = "otk_"
ROLES = ("read", "write")


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling: ``token_id`` None = the global admin token; ``scope`` None = every program."""

    token_id: int | None
    scope: frozenset[int] | None
    role: str

    @property
    def is_global(self) -> bool:
        return self.scope is None

    def may_see(self, program_id: int) -> bool:
        return self.scope is None or program_id in self.scope


GLOBAL = ApiCaller(token_id=None, scope=None, role="write")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(session: Session, program_slug: str, role: str = "write", name: str = "") -> tuple[ApiToken, str]:
    """A new token for the program; returns the row and the token itself (shown once, never stored).

    Raises ValueError for an unknown program or role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    program = session.scalars(select(Program).where(Program.slug == program_slug)).first()
    if program is None:
        raise ValueError(f"no program {program_slug!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        token_hash=token_digest(token),
        prefix=token[:12],
        name=name[:100],
        program_id=program.id,
        role=role,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, token


def revoke_token(session: Session, prefix: str) -> int:
    """Revoke every live token whose prefix is ``prefix`` (as printed at creation); returns how many."""
    rows = session.scalars(select(ApiToken).where(ApiToken.prefix == prefix, ApiToken.revoked_at.is_(None))).all()
    for row in rows:
        row.revoked_at = utcnow()
    return len(rows)


def authenticate(session: Session, given: str, global_token: str) -> ApiCaller | None:
    """The caller a bearer token names, or None when it names none (unknown, revoked, empty).

    The global token is compared in constant time; a program token is found by its digest (the digest of
    a guess reveals nothing about a stored one)."""
    if not given:
        return None
    if global_token and hmac.compare_digest(given.encode(), global_token.encode()):
        return GLOBAL
    if not given.startswith(TOKEN_PREFIX) or len(given) > 200:
        return None
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == token_digest(given), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    return ApiCaller(token_id=row.id, scope=frozenset({row.program_id}), role=row.role)
