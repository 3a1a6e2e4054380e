"""Token lifecycle and enrollment codes on the team server.

A token is stored only as its SHA-256; its id (the first 12 hex digits of
that hash) names it in ``token list`` and ``token revoke``. Every request
looks its token up in the database, so a revocation, an expiry or a disabled
user takes effect at the very next request in every server process (they
share nothing in memory). The last-used time is written at most once a
minute per token, so the lookup stays a read.

An enrollment code is short (``ABCD-EFGH``: 8 characters from an alphabet
without look-alikes, 40 bits), one-time and expiring; wrong codes are counted
in the database and the whole site is limited to a few wrong codes a minute,
which puts guessing a live code out of reach.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, text, update

from consentdesk.domain.backend import NotFound
from consentdesk.domain.model import DomainError
from consentdesk.domain.review import Role, Viewer
from consentdesk.server import problems
from consentdesk.server.db import enroll_failures, enrollment_codes, tokens, users

TOKEN_PREFIX = "cdt_"
ID_LENGTH = 12
LAST_USED_EVERY = timedelta(minutes=1)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 8
CODE_HOURS = 24
# At most this many wrong codes per window across the site.
ENROLL_WINDOW = timedelta(minutes=1)
ENROLL_FAILURES = 10
# Every server process listens here and forgets the tokens it knows (auth_cache).
CHANNEL = "consentdesk_auth"


@dataclass(frozen=True)
class TokenInfo:
    """What ``token list`` shows about one token (never the token itself)."""

    id: str
    user: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True)
class Enrolled:
    """A token handed to a desk for an enrollment code."""

    token: str
    viewer: Viewer
    expires_at: datetime | None


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back naive; they were written as UTC.
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def expiry(days: int | None, now: datetime) -> datetime | None:
    """The expiry *days* from *now*; ``None`` or 0 days: never."""
    if days is None or days == 0:
        return None
    if days < 0:
        raise DomainError("a token's lifetime is a number of days, 0 for no expiry")
    return now + timedelta(days=days)


def notify_auth_change(conn: Connection) -> None:
    """Tell every server process to forget the tokens it knows (sent at commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"NOTIFY {CHANNEL}"))


# --- tokens ----------------------------------------------------------------------------


def create_token(
    engine: Engine, name: str, *, days: int | None, label: str | None = None
) -> tuple[str, TokenInfo]:
    """A new token for *name*; only its hash is stored, so show it once."""
    with engine.begin() as conn:
        _require_user(conn, name)
        return _insert_token(conn, name, days=days, label=label, now=utcnow())


def _insert_token(
    conn: Connection, name: str, *, days: int | None, label: str | None, now: datetime
) -> tuple[str, TokenInfo]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    key = hash_secret(token)
    expires = expiry(days, now)
    conn.execute(
        insert(tokens).values(
            token_hash=key, user_name=name, created_at=now, label=label, expires_at=expires
        )
    )
    return token, TokenInfo(key[:ID_LENGTH], name, label, now, expires, None, None)


def _require_user(conn: Connection, name: str) -> None:
    if not conn.execute(select(users.c.name).where(users.c.name == name)).first():
        raise NotFound(f"no user {name!r}; add it first with: consentdesk user add")


def list_tokens(engine: Engine, *, user: str | None = None) -> list[TokenInfo]:
    query = select(tokens).order_by(tokens.c.user_name, tokens.c.created_at)
    if user is not None:
        query = query.where(tokens.c.user_name == user)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        TokenInfo(
            id=r.token_hash[:ID_LENGTH],
            user=r.user_name,
            label=r.label,
            created_at=as_utc(r.created_at) or utcnow(),
            expires_at=as_utc(r.expires_at),
            last_used_at=as_utc(r.last_used_at),
            revoked_at=as_utc(r.revoked_at),
        )
        for r in rows
    ]


def revoke(engine: Engine, *, token_id: str | None = None, user: str | None = None) -> int:
    """Revoke one token by its id, or every live token of *user*; how many were revoked."""
    if (token_id is None) == (user is None):
        raise DomainError("name one token id or one user")
    live = tokens.c.revoked_at.is_(None)
    with engine.begin() as conn:
        if token_id is not None:
            token_id = token_id.strip().lower()
            if len(token_id) < 6 or any(c not in "0123456789abcdef" for c in token_id):
                raise DomainError("a token id is the hex id shown by: consentdesk token list")
            matches = conn.execute(
                select(tokens.c.token_hash, tokens.c.revoked_at).where(
                    tokens.c.token_hash.startswith(token_id)
                )
            ).all()
            if not matches:
                raise NotFound(f"no token {token_id}")
            if len(matches) > 1:
                raise DomainError(f"{token_id} names {len(matches)} tokens; give more digits")
            where = and_(tokens.c.token_hash == matches[0].token_hash, live)
        else:
            _require_user(conn, str(user))
            where = and_(tokens.c.user_name == user, live)
        notify_auth_change(conn)
        return int(conn.execute(update(tokens).where(where).values(revoked_at=utcnow())).rowcount)


def lookup(conn: Connection, token: str, now: datetime) -> Viewer:
    """The token's user, or the problem that stops it (401 unknown, revoked or
    expired; 403 disabled). Touches its last-used time at most once a minute."""
    return lookup_with_expiry(conn, token, now)[0]


def lookup_with_expiry(
    conn: Connection, token: str, now: datetime
) -> tuple[Viewer, datetime | None]:
    """:func:`lookup`, and when the token expires (None: never)."""
    key = hash_secret(token)
    row = conn.execute(
        select(
            users.c.name,
            users.c.role,
            users.c.team,
            users.c.disabled,
            tokens.c.expires_at,
            tokens.c.revoked_at,
            tokens.c.last_used_at,
        )
        .join(tokens, tokens.c.user_name == users.c.name)
        .where(tokens.c.token_hash == key)
    ).first()
    if row is None:
        raise problems.unauthorized("the token is not valid")
    if row.revoked_at is not None:
        raise problems.unauthorized("the token was revoked; ask your lead for a new sign-in")
    expires = as_utc(row.expires_at)
    if expires is not None and expires <= now:
        raise problems.unauthorized("the token has expired; ask your lead for a new sign-in")
    if row.disabled:
        raise problems.forbidden("this account is disabled", problems.ACCOUNT_DISABLED)
    last = as_utc(row.last_used_at)
    if last is None or now - last >= LAST_USED_EVERY:
        conn.execute(
            update(tokens)
            .where(
                tokens.c.token_hash == key,
                or_(tokens.c.last_used_at.is_(None), tokens.c.last_used_at < now),
            )
            .values(last_used_at=now)
        )
    return Viewer(name=row.name, role=Role(row.role), team=row.team), expires


# --- enrollment codes ------------------------------------------------------------------


def normalize_code(code: str) -> str:
    """The code as stored: upper case, without spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch not in " -\t")


def format_code(raw: str) -> str:
    return f"{raw[:4]}-{raw[4:]}"


def create_code(
    engine: Engine, name: str, *, token_days: int | None, hours: int = CODE_HOURS
) -> tuple[str, datetime]:
    """A one-time code for *name*, valid for *hours*; the code and its expiry."""
    if not 1 <= hours <= 24 * 14:
        raise DomainError("an enrollment code is valid for 1 to 336 hours")
    expiry(token_days, utcnow())  # refuse a bad lifetime now, not at enrollment
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    now = utcnow()
    expires = now + timedelta(hours=hours)
    with engine.begin() as conn:
        _require_user(conn, name)
        conn.execute(
            insert(enrollment_codes).values(
                code_hash=hash_secret(raw),
                user_name=name,
                created_at=now,
                expires_at=expires,
                token_days=token_days or None,
            )
        )
    return format_code(raw), expires


def enroll(engine: Engine, code: str, *, label: str | None) -> Enrolled:
    """Trade a live code for a new token of its user; the code is then spent."""
    raw = normalize_code(code)
    now = utcnow()
    with engine.begin() as conn:
        recent = conn.execute(
            select(func.count()).where(enroll_failures.c.at > now - ENROLL_WINDOW)
        ).scalar_one()
        if recent >= ENROLL_FAILURES:
            raise problems.Problem(
                429,
                "too-many-attempts",
                "Too many attempts",
                "too many wrong enrollment codes; try again in a minute",
                headers={"Retry-After": str(int(ENROLL_WINDOW.total_seconds()))},
            )
    with engine.begin() as conn:
        spent = conn.execute(
            update(enrollment_codes)
            .where(
                enrollment_codes.c.code_hash == hash_secret(raw),
                enrollment_codes.c.used_at.is_(None),
                enrollment_codes.c.expires_at > now,
            )
            .values(used_at=now)
            .returning(enrollment_codes.c.user_name, enrollment_codes.c.token_days)
        ).first()
        if spent is not None:
            user = conn.execute(select(users).where(users.c.name == spent.user_name)).one()
            if user.disabled:
                raise problems.forbidden("this account is disabled", problems.ACCOUNT_DISABLED)
            token, info = _insert_token(
                conn, user.name, days=spent.token_days, label=label or "enrolled", now=now
            )
            viewer = Viewer(name=user.name, role=Role(user.role), team=user.team)
            return Enrolled(token, viewer, info.expires_at)
    with engine.begin() as conn:
        conn.execute(insert(enroll_failures).values(at=now))
        conn.execute(delete(enroll_failures).where(enroll_failures.c.at < now - ENROLL_WINDOW))
    raise problems.unauthorized("the enrollment code is not valid, already used or expired")
