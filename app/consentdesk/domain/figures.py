"""Review figures: what a lead's charts count, decided once for every ledger.

A store selects the records in the viewer's scope and time window (that is a
query, and each store has its own); what they mean is decided here:

- a record belongs to the local day whose ``[start, end)`` holds its time;
- every consent, request and request change is an action of its agent;
- a consent counts for its purpose as given, refused or withdrawn; a
  correction counts as what it records, and the event it corrects drops out
  (wherever the correction falls); a correction to *void* counts as nothing;
- a request change that closes the request (completed, rejected, …) is a
  closing on its day;
- requests are overdue when their due date is before the lead's local today.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from consentdesk.domain.codec import KIND_CONSENT, KIND_REQUEST, KIND_REQUEST_CHANGE
from consentdesk.domain.model import CLOSED_STATUSES, DomainError, PrivacyRequest, require_utc
from consentdesk.domain.review import (
    AgentDay,
    Figures,
    PurposeRate,
    QueueBucket,
    RequestFlow,
    request_queue,
)

MAX_FIGURE_DAYS = 367
"""The longest range figures cover: a year, leap day and both ends included."""

_COUNTED = ("given", "refused", "withdrawn")
_CLOSING = frozenset(s.value for s in CLOSED_STATUSES)


@dataclass(frozen=True, slots=True)
class FigureRecord:
    """One ledger record as the figures see it (columns every ledger has)."""

    kind: str
    at: datetime
    agent: str
    event_id: str = ""
    purpose: str = ""
    state: str = ""  # a consent's recorded state
    corrects: str | None = None  # the event a correction replaces
    status: str = ""  # a request change's new status


def check_edges(edges: Sequence[datetime]) -> None:
    """Day boundaries: 2 to ``MAX_FIGURE_DAYS + 1`` UTC instants, increasing."""
    if len(edges) < 2 or len(edges) > MAX_FIGURE_DAYS + 1:
        raise DomainError(f"figures cover 1 to {MAX_FIGURE_DAYS} days")
    for edge in edges:
        require_utc(edge, "day boundary")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise DomainError("day boundaries must increase")


def compute_figures(
    first_day: date,
    edges: Sequence[datetime],
    records: Iterable[FigureRecord],
    *,
    corrected: Collection[str],
    open_requests: Iterable[PrivacyRequest],
    today: date,
) -> Figures:
    """Figures for the local days from *first_day*, day *i* being ``[edges[i], edges[i+1])``.

    *records* are the scoped records in ``[edges[0], edges[-1])``; *corrected*
    the ids of events that a correction (recorded any time) replaces.
    """
    check_edges(edges)
    days = [first_day + timedelta(days=i) for i in range(len(edges) - 1)]
    per_agent: Counter[tuple[int, str]] = Counter()
    rates: dict[str, Counter[str]] = {}
    opened: Counter[int] = Counter()
    closed: Counter[int] = Counter()
    for r in records:
        day = bisect.bisect_right(edges, r.at) - 1
        if not 0 <= day < len(days):
            continue  # outside the window: a store's query is not trusted to be exact
        per_agent[(day, r.agent)] += 1
        if r.kind == KIND_REQUEST:
            opened[day] += 1
        elif r.kind == KIND_REQUEST_CHANGE:
            closed[day] += r.status in _CLOSING
        elif r.kind == KIND_CONSENT and r.event_id not in corrected and r.state in _COUNTED:
            rates.setdefault(r.purpose, Counter())[r.state] += 1
    queue = request_queue(open_requests, today)
    return Figures(
        first_day=days[0],
        last_day=days[-1],
        agent_days=tuple(
            AgentDay(days[d], agent, n) for (d, agent), n in sorted(per_agent.items())
        ),
        purpose_rates=tuple(
            PurposeRate(p, n["given"], n["refused"], n["withdrawn"])
            for p, n in sorted(rates.items())
        ),
        request_flow=tuple(RequestFlow(day, opened[i], closed[i]) for i, day in enumerate(days)),
        overdue=sum(1 for q in queue if q.bucket == QueueBucket.OVERDUE),
        open_requests=len(queue),
    )
