"""Incident mode: a personal-data breach run under GDPR Art. 33.

A lead opens an incident with what happened, when the organisation became
aware, the affected purposes and regions and an approved script for agents.
While it is open every sidebar shows the script and agents tag calls about it.
Art. 33(1) asks for notification of the supervisory authority without undue
delay and, where feasible, within 72 hours of becoming aware; the clock here
warns at 48 h and 66 h. Opening, notifying and closing are appended records;
closing ends the banner, never the record.

All arithmetic is on UTC instants (72 h is 72 real hours, whatever DST does
to the wall clock); local time appears only on screen.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Protocol, runtime_checkable

from consentdesk.domain.model import DomainError, require_utc, utcnow
from consentdesk.domain.review import Forbidden, Role, Viewer, format_local, from_jsonable

NOTIFY_WITHIN = timedelta(hours=72)
WARN_AFTER = timedelta(hours=48)
URGENT_AFTER = timedelta(hours=66)

MAX_TITLE = 200
MAX_TEXT = 10_000
_REGION = re.compile(r"[A-Z]{2}(?:-[A-Z0-9]{1,3})?")
_CALL_TAG_NS = uuid.UUID("6f1d3c52-43a4-4c43-9a55-5b8f3f3f7a10")


def require_incident_manager(viewer: Viewer) -> None:
    if viewer.role == Role.AGENT:
        raise Forbidden("only team leads and admins can run an incident")


def _text(value: str, what: str, limit: int) -> str:
    value = value.strip()
    if not value:
        raise DomainError(f"{what} is required")
    if len(value) > limit:
        raise DomainError(f"{what} is longer than {limit} characters")
    return value


class IncidentAction(enum.StrEnum):
    OPEN = "open"
    NOTIFY = "notify"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class IncidentOpened:
    """The record that opens an incident."""

    incident_id: uuid.UUID
    title: str
    what_happened: str
    aware_at: datetime
    purposes: tuple[str, ...]
    regions: tuple[str, ...]
    script: str
    by: str
    at: datetime = field(default_factory=utcnow)
    record_id: uuid.UUID = field(default_factory=uuid.uuid4)
    action: IncidentAction = field(default=IncidentAction.OPEN, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "title", _text(self.title, "a title", MAX_TITLE))
        object.__setattr__(
            self, "what_happened", _text(self.what_happened, "what happened", MAX_TEXT)
        )
        object.__setattr__(self, "script", _text(self.script, "the agent script", MAX_TEXT))
        object.__setattr__(self, "by", _text(self.by, "who opens it", MAX_TITLE))
        object.__setattr__(self, "at", require_utc(self.at, "opening time"))
        aware = require_utc(self.aware_at, "awareness time")
        if aware > self.at + timedelta(minutes=5):
            raise DomainError("the organisation cannot become aware in the future")
        object.__setattr__(self, "aware_at", aware)
        regions = tuple(dict.fromkeys(r.strip().upper() for r in self.regions if r.strip()))
        bad = [r for r in regions if not _REGION.fullmatch(r)]
        if bad:
            raise DomainError(f"regions are codes such as DE or US-CA, not {bad[0]!r}")
        object.__setattr__(self, "regions", regions)
        purposes = tuple(dict.fromkeys(p.strip() for p in self.purposes if p.strip()))
        object.__setattr__(self, "purposes", purposes)
        if not purposes and not regions:
            raise DomainError("name the affected purposes or regions")


@dataclass(frozen=True, slots=True)
class AuthorityNotified:
    """When the supervisory authority was notified (Art. 33), and under which reference."""

    incident_id: uuid.UUID
    notified_at: datetime
    authority: str
    by: str
    authority_ref: str | None = None
    delay_reason: str | None = None
    at: datetime = field(default_factory=utcnow)
    record_id: uuid.UUID = field(default_factory=uuid.uuid4)
    action: IncidentAction = field(default=IncidentAction.NOTIFY, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "authority", _text(self.authority, "the authority", MAX_TITLE))
        object.__setattr__(self, "by", _text(self.by, "who notified", MAX_TITLE))
        object.__setattr__(self, "at", require_utc(self.at, "record time"))
        notified = require_utc(self.notified_at, "notification time")
        if notified > self.at + timedelta(minutes=5):
            raise DomainError("the notification time is in the future")
        object.__setattr__(self, "notified_at", notified)
        if self.authority_ref is not None:
            ref = self.authority_ref.strip()
            object.__setattr__(self, "authority_ref", ref[:MAX_TITLE] or None)
        if self.delay_reason is not None:
            reason = self.delay_reason.strip()
            object.__setattr__(self, "delay_reason", reason[:MAX_TEXT] or None)


@dataclass(frozen=True, slots=True)
class IncidentClosed:
    incident_id: uuid.UUID
    summary: str
    by: str
    at: datetime = field(default_factory=utcnow)
    record_id: uuid.UUID = field(default_factory=uuid.uuid4)
    action: IncidentAction = field(default=IncidentAction.CLOSE, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", _text(self.summary, "a closing summary", MAX_TEXT))
        object.__setattr__(self, "by", _text(self.by, "who closes it", MAX_TITLE))
        object.__setattr__(self, "at", require_utc(self.at, "closing time"))


IncidentNote = IncidentOpened | AuthorityNotified | IncidentClosed


_NOTE_TYPES: Mapping[IncidentAction, type[Any]] = {
    IncidentAction.OPEN: IncidentOpened,
    IncidentAction.NOTIFY: AuthorityNotified,
    IncidentAction.CLOSE: IncidentClosed,
}


def note_from_json(data: Mapping[str, Any]) -> IncidentNote:
    """An incident record from its JSON form (``to_jsonable`` of a note)."""
    try:
        action = IncidentAction(data["action"])
    except (KeyError, ValueError, TypeError) as exc:
        raise DomainError("an incident record needs action open, notify or close") from exc
    note: IncidentNote = from_jsonable(_NOTE_TYPES[action], data)
    return note


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as it stands, folded from its records."""

    opened: IncidentOpened
    notified: AuthorityNotified | None = None
    closed: IncidentClosed | None = None

    @property
    def incident_id(self) -> uuid.UUID:
        return self.opened.incident_id

    @property
    def is_open(self) -> bool:
        return self.closed is None

    @property
    def deadline(self) -> datetime:
        return self.opened.aware_at + NOTIFY_WITHIN


def fold_incidents(notes: Iterable[IncidentNote]) -> tuple[Incident, ...]:
    """Incidents from their records in ledger order, newest opened first."""
    found: dict[uuid.UUID, Incident] = {}
    for n in notes:
        if isinstance(n, IncidentOpened):
            found.setdefault(n.incident_id, Incident(n))
            continue
        inc = found.get(n.incident_id)
        if inc is None:
            continue
        if isinstance(n, AuthorityNotified) and inc.notified is None:
            found[n.incident_id] = Incident(inc.opened, n, inc.closed)
        elif isinstance(n, IncidentClosed) and inc.closed is None:
            found[n.incident_id] = Incident(inc.opened, inc.notified, n)
    return tuple(sorted(found.values(), key=lambda i: i.opened.at, reverse=True))


def check_incident_note(note: IncidentNote, existing: Iterable[Incident]) -> None:
    """Raise DomainError when *note* does not follow from the incidents recorded so far."""
    current = {i.incident_id: i for i in existing}
    inc = current.get(note.incident_id)
    if isinstance(note, IncidentOpened):
        if inc is not None:
            raise DomainError("an incident with this id already exists")
        return
    if inc is None:
        raise DomainError("there is no such incident")
    if inc.closed is not None:
        raise DomainError(f"incident {inc.opened.title!r} is already closed")
    if isinstance(note, AuthorityNotified):
        if inc.notified is not None:
            raise DomainError("the authority notification is already recorded")
        if note.notified_at < inc.opened.aware_at:
            raise DomainError("the authority cannot be notified before the breach was known")
        if note.notified_at > inc.deadline and not note.delay_reason:
            raise DomainError(
                "notified after 72 hours: Art. 33(1) asks for the reasons for the delay"
            )


# --- the 72-hour clock -----------------------------------------------------------


class ClockStage(enum.StrEnum):
    RUNNING = "running"
    WARNING = "warning"  # 48 h gone
    URGENT = "urgent"  # 66 h gone
    OVERDUE = "overdue"  # 72 h gone, authority not notified
    NOTIFIED = "notified"  # notified within 72 h
    NOTIFIED_LATE = "notified-late"


@dataclass(frozen=True, slots=True)
class NotificationClock:
    aware_at: datetime
    deadline: datetime
    elapsed: timedelta
    stage: ClockStage
    next_change: datetime | None

    @property
    def remaining(self) -> timedelta:
        """Time left to the deadline (negative once it has passed)."""
        return NOTIFY_WITHIN - self.elapsed

    @property
    def stopped(self) -> bool:
        return self.stage in (ClockStage.NOTIFIED, ClockStage.NOTIFIED_LATE)


def notification_clock(incident: Incident, now: datetime) -> NotificationClock:
    """Where the Art. 33 clock stands at *now*; it stops when the authority is notified."""
    now = require_utc(now, "now")
    aware = incident.opened.aware_at
    deadline = incident.deadline
    if incident.notified is not None:
        elapsed = incident.notified.notified_at - aware
        late = incident.notified.notified_at > deadline
        stage = ClockStage.NOTIFIED_LATE if late else ClockStage.NOTIFIED
        return NotificationClock(aware, deadline, elapsed, stage, None)
    elapsed = now - aware
    if elapsed >= NOTIFY_WITHIN:
        return NotificationClock(aware, deadline, elapsed, ClockStage.OVERDUE, None)
    if elapsed >= URGENT_AFTER:
        return NotificationClock(aware, deadline, elapsed, ClockStage.URGENT, deadline)
    if elapsed >= WARN_AFTER:
        return NotificationClock(aware, deadline, elapsed, ClockStage.WARNING, aware + URGENT_AFTER)
    return NotificationClock(aware, deadline, elapsed, ClockStage.RUNNING, aware + WARN_AFTER)


def _hm(delta: timedelta) -> str:
    minutes = int(abs(delta).total_seconds() // 60)
    hours = minutes // 60
    if hours >= 96:
        return f"{hours // 24} d {hours % 24} h"
    return f"{hours} h {minutes % 60:02d} min"


def describe_clock(clock: NotificationClock, tz: tzinfo) -> str:
    """The clock in one line, deadline in local time with its zone."""
    due = format_local(clock.deadline, tz)
    if clock.stage == ClockStage.NOTIFIED:
        return f"Authority notified {_hm(clock.elapsed)} after awareness (deadline was {due})"
    if clock.stage == ClockStage.NOTIFIED_LATE:
        late = clock.elapsed - NOTIFY_WITHIN
        return f"Authority notified {_hm(late)} after the 72-hour deadline ({due})"
    if clock.stage == ClockStage.OVERDUE:
        return f"72 hours passed {_hm(clock.remaining)} ago ({due}) — notify now and give reasons"
    prefix = {
        ClockStage.RUNNING: "",
        ClockStage.WARNING: "48 hours gone: ",
        ClockStage.URGENT: "Less than 6 hours: ",
    }[clock.stage]
    return f"{prefix}{_hm(clock.remaining)} left to notify the authority (by {due})"


# --- local time input ------------------------------------------------------------


def parse_local_time(text: str, tz: tzinfo) -> datetime:
    """A time typed by a lead: ISO with an offset, or local wall time in *tz*.

    Wall times that DST skips (spring forward) or repeats (fall back) are
    refused with a message, rather than guessed.
    """
    cleaned = text.strip().replace("T", " ")
    if not cleaned:
        raise DomainError("give a date and time, e.g. 2025-03-30 09:15")
    try:
        parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        shown = text.strip()[:40]
        raise DomainError(f"not a date and time: {shown!r} (use 2025-03-30 09:15)") from None
    if parsed.tzinfo is not None:
        return parsed.astimezone(UTC)
    first = parsed.replace(tzinfo=tz, fold=0)
    second = parsed.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        when = parsed.strftime("%Y-%m-%d %H:%M")
        if back != parsed:
            raise DomainError(f"{when} does not exist in {tz} (clocks went forward)")
        raise DomainError(
            f"{when} happens twice in {tz} (clocks went back); add the UTC offset, "
            f"e.g. {when}{_offset(first)} or {when}{_offset(second)}"
        )
    return first.astimezone(UTC)


def _offset(at: datetime) -> str:
    off = at.utcoffset() or timedelta()
    sign = "-" if off < timedelta() else "+"
    minutes = int(abs(off).total_seconds() // 60)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# --- call tags -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallTag:
    """An agent marked a call as being about an incident (one click in the sidebar)."""

    incident_id: uuid.UUID
    call_id: str
    agent: str
    at: datetime = field(default_factory=utcnow)

    def __post_init__(self) -> None:
        object.__setattr__(self, "call_id", _text(self.call_id, "the call id", 256))
        object.__setattr__(self, "agent", _text(self.agent, "the agent", MAX_TITLE))
        object.__setattr__(self, "at", require_utc(self.at, "tag time"))

    @property
    def record_id(self) -> uuid.UUID:
        """The same call tagged twice for one incident is one record."""
        return uuid.uuid5(_CALL_TAG_NS, f"{self.incident_id}/{self.call_id}")


@dataclass(frozen=True, slots=True)
class HourCount:
    start: datetime  # UTC start of the hour
    count: int


def tagged_per_hour(
    tags: Iterable[CallTag], since: datetime, until: datetime
) -> tuple[HourCount, ...]:
    """Tagged calls per UTC hour in ``[since, until)``, empty hours included.

    Hours are counted on the UTC clock so a DST change neither merges two hours
    nor leaves a gap; :func:`format_local` labels them in local time.
    """
    since = require_utc(since, "from").replace(minute=0, second=0, microsecond=0)
    until = require_utc(until, "to")
    counts = Counter(
        t.at.replace(minute=0, second=0, microsecond=0) for t in tags if since <= t.at < until
    )
    out: list[HourCount] = []
    hour = since
    while hour < until:
        out.append(HourCount(hour, counts.get(hour, 0)))
        hour += timedelta(hours=1)
    return tuple(out)


# --- the store -------------------------------------------------------------------


@runtime_checkable
class IncidentSource(Protocol):
    """What incident mode needs from a store (embedded ledger or team server)."""

    def incidents(self, *, open_only: bool = False) -> Sequence[Incident]:
        """Incidents, newest first; the sidebar asks for the open ones."""
        ...

    def record_incident(self, note: IncidentNote) -> Incident:
        """Append an open/notify/close record (leads and admins only; idempotent)."""
        ...

    def tag_call(self, tag: CallTag) -> CallTag:
        """Record that a call was about an incident; tagging twice records once."""
        ...

    def call_tags(self, incident_id: uuid.UUID) -> Sequence[CallTag]:
        """Every call tagged for an incident, oldest first."""
        ...
