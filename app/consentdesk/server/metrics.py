"""``/metrics`` in the Prometheus text format (version 0.0.4).

Two kinds of figures. Request counts and latencies are kept in memory by each
server process and labelled with its ``pid``: workers share nothing, so sum
them over ``pid`` in Prometheus (``sum without (pid) (...)``); a restarted
worker starts again from zero, which ``rate()`` handles. Ledger figures
(entries, open and overdue requests, tokens, users) are read from the
database at each scrape, so every worker reports the same values.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from consentdesk.server.db import entries, requests, tokens, users

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: int = 0
    sum: float = 0.0


class ProcessMetrics:
    """Request counters of this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self.disconnects = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (method, route, str(status))
            self._requests[key] = self._requests.get(key, 0) + 1
            hist = self._latency.setdefault(route, _Histogram())
            hist.total += 1
            hist.sum += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    hist.counts[i] += 1

    def client_gone(self) -> None:
        with self._lock:
            self.disconnects += 1

    def lines(self) -> list[str]:
        pid = str(os.getpid())
        with self._lock:
            requests_ = sorted(self._requests.items())
            latency = sorted(self._latency.items())
            gone = self.disconnects
        out = _header("consentdesk_http_requests_total", "counter", "HTTP requests answered")
        for (method, route, status), n in requests_:
            labels = {"pid": pid, "method": method, "route": route, "status": status}
            out.append(_sample("consentdesk_http_requests_total", labels, n))
        name = "consentdesk_http_request_duration_seconds"
        out += _header(name, "histogram", "Time to answer a request")
        for route, hist in latency:
            for bound, n in zip(BUCKETS, hist.counts, strict=True):
                labels = {"pid": pid, "route": route, "le": _number(bound)}
                out.append(_sample(f"{name}_bucket", labels, n))
            every = {"pid": pid, "route": route, "le": "+Inf"}
            out.append(_sample(f"{name}_bucket", every, hist.total))
            out.append(_sample(f"{name}_sum", {"pid": pid, "route": route}, hist.sum))
            out.append(_sample(f"{name}_count", {"pid": pid, "route": route}, hist.total))
        out += _header(
            "consentdesk_client_disconnects_total", "counter", "Clients gone before the answer"
        )
        out.append(_sample("consentdesk_client_disconnects_total", {"pid": pid}, gone))
        return out


PROCESS = ProcessMetrics()


def ledger_lines(engine: Engine, today: date | None = None) -> list[str]:
    """Figures read from the database (the same from every worker)."""
    today = today or datetime.now(UTC).date()
    now = datetime.now(UTC)
    live_token = and_(
        tokens.c.revoked_at.is_(None),
        or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now),
    )
    with engine.connect() as conn:
        head = conn.execute(select(func.coalesce(func.max(entries.c.seq), 0))).scalar_one()
        open_requests = conn.execute(
            select(func.count()).where(requests.c.is_open.is_(True))
        ).scalar_one()
        overdue = conn.execute(
            select(func.count()).where(requests.c.is_open.is_(True), requests.c.due < today)
        ).scalar_one()
        live = conn.execute(select(func.count()).where(live_token)).scalar_one()
        user_rows = conn.execute(select(users.c.disabled, func.count()).group_by(users.c.disabled))
        by_state = {"active": 0, "disabled": 0}
        for disabled, n in user_rows:
            by_state["disabled" if disabled else "active"] += int(n)
    out: list[str] = []
    for name, help_text, value in (
        ("consentdesk_ledger_entries", "Records on the ledger (its chain head)", head),
        ("consentdesk_requests_open", "Open privacy requests", open_requests),
        ("consentdesk_requests_overdue", "Open privacy requests past their due date", overdue),
        ("consentdesk_tokens_live", "Tokens neither revoked nor expired", live),
    ):
        out += _header(name, "gauge", help_text)
        out.append(_sample(name, {}, value))
    out += _header("consentdesk_users", "gauge", "Users by state")
    out += [_sample("consentdesk_users", {"state": k}, v) for k, v in sorted(by_state.items())]
    return out


def render(engine: Engine) -> str:
    """The whole exposition: this process's counters, then the ledger's figures."""
    lines = PROCESS.lines()
    try:
        lines += ledger_lines(engine)
        up = 1
    except SQLAlchemyError:  # a scrape still answers when the database is down
        up = 0
    lines += _header("consentdesk_database_up", "gauge", "1 when the database answered")
    lines.append(_sample("consentdesk_database_up", {}, up))
    return "\n".join(lines) + "\n"


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {_number(value)}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
