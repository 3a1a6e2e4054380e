"""Team-lead review of captured actions: the query model every review store speaks.

A lead pages through what agents captured (consents, refusals, withdrawals,
corrections, privacy requests and their status moves), opens the full proof of
one action, flags it for QA, works the privacy-request queue and looks at a few
figures. Flags, reads and status moves are new records appended to the ledger;
nothing here edits or deletes a record.

Qt-free: the review window, the CLI and the server all use these types, and
:func:`from_jsonable` turns their JSON form (``model.to_jsonable``) back into them.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import dataclasses
import enum
import hashlib
import json
import os
import re
import time as _time
import types
import typing
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from consentdesk.domain import phone, requests, rules
from consentdesk.domain.backend import BackendError
from consentdesk.domain.catalogue import Catalogue
from consentdesk.domain.model import (
    Channel,
    ConsentEvent,
    DomainError,
    Jurisdiction,
    NewRequest,
    Notice,
    PrivacyRequest,
    RequestChange,
    RequestStatus,
    RequestType,
    require_utc,
    utcnow,
)
from consentdesk.domain.references import (
    is_valid_reference,
    normalize_reference,
    reference_prefix,
)
from consentdesk.domain.scripts import Script, placeholders, render

MAX_COMMENT = 2000
MAX_PAGE = 1000
DEFAULT_PAGE = 200


class Forbidden(BackendError):
    """The signed-in user's role may not do this (the server answers 403)."""


class Role(enum.StrEnum):
    AGENT = "agent"
    LEAD = "lead"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is reviewing: leads see their own team, admins everyone, agents nothing."""

    name: str
    role: Role
    team: str | None = None

    def require_reviewer(self) -> None:
        if self.role == Role.AGENT:
            raise Forbidden("only team leads and admins can open the review")
        if self.role == Role.LEAD and not self.team:
            raise Forbidden("this lead account has no team to review")


# --- actions ---------------------------------------------------------------------


class ActionKind(enum.StrEnum):
    CONSENT = "consent"
    REFUSAL = "refusal"
    WITHDRAWAL = "withdrawal"
    CORRECTION = "correction"
    REQUEST = "request"
    REQUEST_CHANGE = "request-change"


ACTION_LABELS: Mapping[ActionKind, str] = {
    ActionKind.CONSENT: "Consent",
    ActionKind.REFUSAL: "Refusal",
    ActionKind.WITHDRAWAL: "Withdrawal",
    ActionKind.CORRECTION: "Correction",
    ActionKind.REQUEST: "Privacy request",
    ActionKind.REQUEST_CHANGE: "Request status",
}


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One captured action as the review table lists it.

    ``subject`` is masked to its last digits in rows a store pages out; the full
    number comes only from :meth:`ReviewSource.reveal_number` (a logged read)
    or from an export (logged too).
    """

    seq: int
    event_id: uuid.UUID
    kind: ActionKind
    at: datetime
    agent: str
    subject: str
    purpose: str | None = None
    channel: Channel | None = None
    request_type: RequestType | None = None
    status: RequestStatus | None = None
    reference: str | None = None
    jurisdiction: Jurisdiction | None = None
    script_id: str | None = None
    script_version: str | None = None
    call_id: str | None = None
    team: str | None = None
    flagged: bool = False

    @property
    def what(self) -> str:
        """Purpose/channel or request type, as one short column."""
        if self.purpose is not None:
            return f"{self.purpose} · {self.channel}" if self.channel else self.purpose
        if self.request_type is not None:
            return f"{self.request_type} → {self.status}" if self.status else str(self.request_type)
        return str(self.status or "")

    @property
    def script(self) -> str:
        if self.script_id is None:
            return ""
        return f"{self.script_id} v{self.script_version}" if self.script_version else self.script_id


def action_kind(event: ConsentEvent) -> ActionKind:
    """How the review classifies a consent event."""
    if event.corrects is not None:
        return ActionKind.CORRECTION
    return {
        "given": ActionKind.CONSENT,
        "refused": ActionKind.REFUSAL,
        "withdrawn": ActionKind.WITHDRAWAL,
    }[event.state.value]


# --- filter and search -----------------------------------------------------------


class SearchKind(enum.StrEnum):
    NUMBER = "number"  # a whole number, normalised to E.164
    DIGITS = "digits"  # the last digits of a number
    REFERENCE = "reference"  # a request reference, or the start of one
    CALL = "call"  # a call id


@dataclass(frozen=True, slots=True)
class Search:
    kind: SearchKind
    value: str


_DIGITS = re.compile(r"\d{3,8}")
_DIALLED = re.compile(r"[\d\s+()./\-]+")
_CALL_ID = re.compile(r"[\w.@:\-]{1,128}")


def parse_search(text: str, *, region: str) -> Search | None:
    """Read what a lead typed into the search box; None for an empty box.

    A whole phone number in any format finds that customer; three to eight
    digits find numbers ending in them; a request reference, or its start
    (``RQ-KD6X``), finds the requests and their status moves; anything else is
    taken as a call id.
    """
    cleaned = text.strip()
    if not cleaned:
        return None
    if len(cleaned) > phone.MAX_INPUT:
        raise DomainError("search text is too long")
    compact = re.sub(r"[\s\-/().]", "", cleaned)
    if _DIGITS.fullmatch(compact):
        return Search(SearchKind.DIGITS, compact)
    if is_valid_reference(cleaned):
        return Search(SearchKind.REFERENCE, normalize_reference(cleaned))
    start = reference_prefix(cleaned)
    if start is not None:
        return Search(SearchKind.REFERENCE, start)
    # Only dialled characters: libphonenumber would read letters as a vanity number.
    if _DIALLED.fullmatch(cleaned):
        try:
            return Search(SearchKind.NUMBER, phone.normalize(cleaned, region))
        except phone.InvalidNumber:
            pass
    if _CALL_ID.fullmatch(cleaned):
        return Search(SearchKind.CALL, cleaned)
    raise DomainError(
        "search for a phone number, its last digits, a request reference or a call id"
    )


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """What the review table shows. Empty fields do not filter.

    ``since`` is inclusive and ``until`` exclusive, both UTC instants (use
    :func:`local_days` for calendar days). ``flagged`` True shows actions with
    an open flag, False those without.
    """

    agent: str | None = None
    team: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    kinds: tuple[ActionKind, ...] = ()
    purpose: str | None = None
    channel: Channel | None = None
    jurisdiction: Jurisdiction | None = None
    flagged: bool | None = None
    search: Search | None = None

    def __post_init__(self) -> None:
        if self.since is not None:
            object.__setattr__(self, "since", require_utc(self.since, "from time"))
        if self.until is not None:
            object.__setattr__(self, "until", require_utc(self.until, "to time"))
        if self.since and self.until and self.since >= self.until:
            raise DomainError("the date range ends before it starts")
        object.__setattr__(self, "kinds", tuple(sorted({ActionKind(k) for k in self.kinds})))
        if self.channel is not None:
            object.__setattr__(self, "channel", Channel(self.channel))
        if self.jurisdiction is not None:
            object.__setattr__(self, "jurisdiction", Jurisdiction(self.jurisdiction))

    def scoped(self, viewer: Viewer) -> ReviewFilter:
        """This filter as *viewer* may run it: a lead only ever sees their own team."""
        viewer.require_reviewer()
        if viewer.role == Role.ADMIN:
            return self
        if self.team is not None and self.team != viewer.team:
            raise Forbidden("leads can review their own team only")
        return dataclasses.replace(self, team=viewer.team)

    def describe(self) -> str:
        """One line for export headers and the read log (never the searched number)."""
        parts: list[str] = []
        for name in ("agent", "team", "purpose", "channel", "jurisdiction"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value}")
        if self.since:
            parts.append(f"from={self.since.isoformat()}")
        if self.until:
            parts.append(f"to={self.until.isoformat()}")
        if self.kinds:
            parts.append("action=" + ",".join(sorted(self.kinds)))
        if self.flagged is not None:
            parts.append(f"flagged={'yes' if self.flagged else 'no'}")
        if self.search:
            parts.append(f"search={self.search.kind}")
        return " ".join(parts) or "all"


class SortKey(enum.StrEnum):
    TIME = "time"
    AGENT = "agent"
    PURPOSE = "purpose"
    KIND = "kind"


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: the last row's sort value, time and ledger seq.

    Rows are ordered by (sort value, time, seq); the time sort has no sort value.
    """

    key: str | None
    at: datetime
    seq: int

    def token(self) -> str:
        raw = json.dumps([self.key, self.at.isoformat(), self.seq], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            key, at, seq = json.loads(raw)
            if not (key is None or isinstance(key, str)) or not isinstance(seq, int):
                raise ValueError("wrong types")
            return cls(key, require_utc(datetime.fromisoformat(at), "cursor time"), seq)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise DomainError("bad page cursor") from exc


@dataclass(frozen=True, slots=True)
class Page:
    """Which rows: keyset paging after *after*, or *offset* rows in."""

    limit: int = DEFAULT_PAGE
    sort: SortKey = SortKey.TIME
    descending: bool = True
    after: Cursor | None = None
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise DomainError(f"page size must be from 1 to {MAX_PAGE}")
        if self.offset < 0:
            raise DomainError("page offset cannot be negative")
        if self.after is not None and self.offset:
            raise DomainError("give a cursor or an offset, not both")


@dataclass(frozen=True, slots=True)
class PageResult:
    rows: tuple[ActionRow, ...]
    next: Cursor | None = None


def sort_value(row: ActionRow, key: SortKey) -> str | None:
    """The value a row is sorted by under *key* (TIME sorts by ledger seq alone)."""
    if key == SortKey.TIME:
        return None
    if key == SortKey.AGENT:
        return row.agent
    if key == SortKey.PURPOSE:
        return row.purpose or (str(row.request_type) if row.request_type else "")
    return str(row.kind)


def next_cursor(rows: Sequence[ActionRow], page: Page) -> Cursor | None:
    """The cursor after a full page, None when the page was the last."""
    if len(rows) < page.limit:
        return None
    last = rows[-1]
    return Cursor(sort_value(last, page.sort), last.at, last.seq)


# --- proof of one action ---------------------------------------------------------


class ScriptVerdict(enum.StrEnum):
    MATCH = "match"  # the text hashes to the recorded hash and fits the published script
    NO_SCRIPT = "no-script"  # nothing was read (e.g. a status move)
    TEXT_ALTERED = "text-altered"  # the stored text does not hash to the recorded hash
    UNKNOWN_SCRIPT = "unknown-script"  # no such script id/version/language in the registry
    TEMPLATE_MISMATCH = "template-mismatch"  # the text does not fit the published template


@dataclass(frozen=True, slots=True)
class ScriptCheck:
    verdict: ScriptVerdict
    message: str

    @property
    def ok(self) -> bool:
        return self.verdict in (ScriptVerdict.MATCH, ScriptVerdict.NO_SCRIPT)


def _template_pattern(script: Script) -> re.Pattern[str]:
    """A regex the rendered text of *script* must match, whatever the placeholders held.

    Rendering with marker values and escaping the result keeps every literal
    character of the published wording; only the placeholders become wildcards
    (rendered values are single lines of plain text).
    """
    markers = {name: f"QZX{name.upper()}QZX" for name in placeholders(script)}
    shape = re.escape(render(script, markers).text)
    for marker in markers.values():
        shape = shape.replace(re.escape(marker), r"[^\n]+?")
    return re.compile(shape)


def check_notice(notice: Notice | None, scripts: Iterable[Script]) -> ScriptCheck:
    """Check the text an agent saw against its recorded hash and the script registry."""
    if notice is None:
        return ScriptCheck(ScriptVerdict.NO_SCRIPT, "No script was read for this action.")
    actual = hashlib.sha256(notice.text.encode("utf-8")).hexdigest()
    if actual != notice.sha256:
        return ScriptCheck(
            ScriptVerdict.TEXT_ALTERED,
            "The stored text does not match the hash recorded at capture.",
        )
    script = next(
        (
            s
            for s in scripts
            if s.id == notice.script_id
            and s.version == notice.version
            and s.language == notice.language
        ),
        None,
    )
    label = f"{notice.script_id} v{notice.version} ({notice.language})"
    if script is None:
        return ScriptCheck(
            ScriptVerdict.UNKNOWN_SCRIPT, f"Script {label} is not in the script registry."
        )
    if not _template_pattern(script).fullmatch(notice.text):
        return ScriptCheck(
            ScriptVerdict.TEMPLATE_MISMATCH,
            f"The text does not fit the published wording of {label}.",
        )
    return ScriptCheck(
        ScriptVerdict.MATCH,
        f"Hash verified; text matches published script {label} "
        f"(template sha256 {script.template_sha256[:12]}…).",
    )


# --- flags (QA) ------------------------------------------------------------------


class FlagAction(enum.StrEnum):
    RAISE = "raise"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class FlagNote:
    """One appended QA record: a flag raised on an action, or its resolution."""

    flag_id: uuid.UUID
    event_id: uuid.UUID
    action: FlagAction
    by: str
    comment: str
    at: datetime = field(default_factory=utcnow)
    record_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", require_utc(self.at, "flag time"))
        object.__setattr__(self, "comment", self.comment.strip())
        if not self.by.strip():
            raise DomainError("a flag needs the reviewer's name")
        if self.action == FlagAction.RAISE and not self.comment:
            raise DomainError("say what is wrong when you flag an action")
        if len(self.comment) > MAX_COMMENT:
            raise DomainError(f"the comment is longer than {MAX_COMMENT} characters")


def raise_flag(event_id: uuid.UUID, comment: str, *, by: str) -> FlagNote:
    return FlagNote(uuid.uuid4(), event_id, FlagAction.RAISE, by, comment)


def resolve_flag(flag: Flag, comment: str, *, by: str) -> FlagNote:
    if flag.resolved:
        raise DomainError("this flag is already resolved")
    return FlagNote(flag.flag_id, flag.event_id, FlagAction.RESOLVE, by, comment)


@dataclass(frozen=True, slots=True)
class Flag:
    """A flag as it stands, folded from its notes."""

    flag_id: uuid.UUID
    event_id: uuid.UUID
    raised_by: str
    raised_at: datetime
    comment: str
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolution: str | None = None

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None


def fold_flags(notes: Iterable[FlagNote]) -> tuple[Flag, ...]:
    """Current flags from their notes in ledger order; a second resolution is ignored."""
    flags: dict[uuid.UUID, Flag] = {}
    for n in notes:
        if n.action == FlagAction.RAISE:
            flags.setdefault(n.flag_id, Flag(n.flag_id, n.event_id, n.by, n.at, n.comment))
        elif (f := flags.get(n.flag_id)) is not None and not f.resolved:
            flags[n.flag_id] = dataclasses.replace(
                f, resolved_by=n.by, resolved_at=n.at, resolution=n.comment
            )
    return tuple(flags.values())


def check_flag_note(note: FlagNote, existing: Iterable[FlagNote]) -> None:
    """Raise DomainError when *note* does not follow from the notes already recorded."""
    current = {f.flag_id: f for f in fold_flags(existing)}
    if note.action == FlagAction.RAISE:
        if note.flag_id in current:
            raise DomainError("a flag with this id already exists")
        return
    flag = current.get(note.flag_id)
    if flag is None or flag.event_id != note.event_id:
        raise DomainError("there is no such flag on this action")
    if flag.resolved:
        raise DomainError("this flag is already resolved")


@dataclass(frozen=True, slots=True)
class ActionDetail:
    """The full proof of one action, as the detail pane shows it."""

    row: ActionRow
    record: ConsentEvent | NewRequest | RequestChange
    notice: Notice | None
    script_check: ScriptCheck
    ledger_hash: str
    call_actions: tuple[ActionRow, ...] = ()
    history: tuple[ActionRow, ...] = ()
    flags: tuple[Flag, ...] = ()
    request: PrivacyRequest | None = None

    def call_offset(self) -> timedelta | None:
        """Time from the call's first recorded action to this one."""
        if not self.call_actions:
            return None
        return self.row.at - min(a.at for a in self.call_actions)


# --- privacy-request queue -------------------------------------------------------


class QueueBucket(enum.StrEnum):
    OVERDUE = "overdue"
    DUE_THIS_WEEK = "due-this-week"
    LATER = "later"


QUEUE_LABELS: Mapping[QueueBucket, str] = {
    QueueBucket.OVERDUE: "Overdue",
    QueueBucket.DUE_THIS_WEEK: "Due this week",
    QueueBucket.LATER: "Later",
}


@dataclass(frozen=True, slots=True)
class QueueItem:
    request: PrivacyRequest
    bucket: QueueBucket
    days_left: int
    clock: str


def bucket_for(request: PrivacyRequest, today: date) -> QueueBucket:
    days = request.days_left(today)
    if days < 0:
        return QueueBucket.OVERDUE
    return QueueBucket.DUE_THIS_WEEK if days < 7 else QueueBucket.LATER


def statutory_clock(request: PrivacyRequest, today: date) -> str:
    """The statutory clock in words, with the rule it comes from."""
    rule = rules.rule_for(request.jurisdiction)
    days = request.days_left(today)
    ext = ", extended" if request.extended else ""
    if not request.is_open:
        return f"closed ({request.status}) — {rule.citation}"
    if days < 0:
        when = f"overdue by {-days} day{'s' if days != -1 else ''}"
    elif days == 0:
        when = "due today"
    else:
        when = f"{days} day{'s' if days != 1 else ''} left"
    return f"{when} (due {request.due.isoformat()}{ext}) — {rule.citation}"


def request_queue(pending: Iterable[PrivacyRequest], today: date) -> tuple[QueueItem, ...]:
    """Open requests, overdue first, then due this week, then later; soonest due first."""
    order = list(QueueBucket)
    items = [
        QueueItem(r, bucket_for(r, today), r.days_left(today), statutory_clock(r, today))
        for r in pending
        if r.is_open
    ]
    items.sort(key=lambda i: (order.index(i.bucket), i.request.due, i.request.created_at))
    return tuple(items)


LEAD_MOVES: tuple[RequestStatus, ...] = (
    RequestStatus.VERIFYING,
    RequestStatus.IN_PROGRESS,
    RequestStatus.EXTENDED,
    RequestStatus.COMPLETED,
    RequestStatus.REJECTED,
)
REASON_REQUIRED = requests.NEEDS_REASON


def allowed_moves(request: PrivacyRequest) -> tuple[RequestStatus, ...]:
    """The status moves a lead may offer for *request* now, in workflow order."""
    possible = requests.MOVES[request.status]
    return tuple(s for s in LEAD_MOVES if s in possible)


def lead_move(
    request: PrivacyRequest,
    status: RequestStatus,
    *,
    by: str,
    reason: str | None = None,
    at: datetime | None = None,
) -> RequestChange:
    """The status move a lead asked for, checked against the request lifecycle and
    the statutory rules (reasons for extended/rejected, one extension in time)."""
    reason = (reason or "").strip() or None
    if status not in LEAD_MOVES:
        raise DomainError(f"a lead cannot move a request to {status}")
    if reason is not None and len(reason) > MAX_COMMENT:
        raise DomainError(f"the reason is longer than {MAX_COMMENT} characters")
    change = RequestChange(
        request_id=request.request_id,
        agent=by,
        status=status,
        reason=reason,
        at=at or utcnow(),
    )
    requests.check_change(request, change)
    return change


# --- figures ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentDay:
    day: date
    agent: str
    count: int


@dataclass(frozen=True, slots=True)
class PurposeRate:
    """Captures for one purpose in the period; rates are shares of all its captures."""

    purpose: str
    given: int
    refused: int
    withdrawn: int

    @property
    def total(self) -> int:
        return self.given + self.refused + self.withdrawn

    @property
    def refusal_rate(self) -> float:
        return self.refused / self.total if self.total else 0.0

    @property
    def withdrawal_rate(self) -> float:
        return self.withdrawn / self.total if self.total else 0.0


@dataclass(frozen=True, slots=True)
class RequestFlow:
    day: date
    opened: int
    closed: int


@dataclass(frozen=True, slots=True)
class Figures:
    first_day: date
    last_day: date
    agent_days: tuple[AgentDay, ...]
    purpose_rates: tuple[PurposeRate, ...]
    request_flow: tuple[RequestFlow, ...]
    overdue: int
    open_requests: int


# --- read-access log and integrity ----------------------------------------------


class ReadKind(enum.StrEnum):
    NUMBER = "number"  # the full number was revealed
    DETAIL = "detail"  # the proof and the customer's history were opened
    STATUS = "status"  # a desk looked up the caller's status
    EXPORT = "export"  # an export that names the customer


@dataclass(frozen=True, slots=True)
class ReadAccess:
    """Who looked at whom, when, and from which call."""

    reader: str
    subject: str | None
    what: ReadKind
    at: datetime = field(default_factory=utcnow)
    call_id: str | None = None
    about: uuid.UUID | None = None
    detail: str | None = None
    record_id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", require_utc(self.at, "read time"))
        if not self.reader.strip():
            raise DomainError("a read needs the reader's name")
        if self.subject is None and self.what != ReadKind.EXPORT:
            raise DomainError("a read names the customer whose data was read")


@dataclass(frozen=True, slots=True)
class ReadLogFilter:
    reader: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_PAGE
    before_seq: int | None = None


@dataclass(frozen=True, slots=True)
class ReadLogEntry:
    seq: int
    read: ReadAccess


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    ok: bool
    checked: int
    message: str
    first_bad_seq: int | None = None


# --- the store -------------------------------------------------------------------


@runtime_checkable
class ReviewSource(Protocol):
    """What the review window needs from a store; always called from a worker thread.

    Every method applies the viewer's scope (leads: own team; admins: all;
    agents: :class:`Forbidden`).
    """

    @property
    def viewer(self) -> Viewer: ...

    def catalogue(self) -> Catalogue:
        """The purposes catalogue in force (for filters and exports)."""
        ...

    def scripts(self) -> Sequence[Script]:
        """The script registry the proof is checked against."""
        ...

    def actions(self, flt: ReviewFilter, page: Page) -> PageResult:
        """One page of actions matching *flt*, numbers masked."""
        ...

    def reveal_number(self, event_id: uuid.UUID, *, call_id: str | None = None) -> str:
        """The full number of an action's customer; logged as a read."""
        ...

    def action(self, event_id: uuid.UUID) -> ActionDetail:
        """The full proof of one action, logged as a read; raises NotFound
        (or Forbidden when the action is out of the viewer's scope)."""
        ...

    def export_actions(self, flt: ReviewFilter) -> Iterator[ActionRow]:
        """Every action of the view with full numbers, oldest first; logged as an export."""
        ...

    def export_events(self, flt: ReviewFilter) -> Iterator[ConsentEvent]:
        """The consent events of the view, oldest first; logged as an export."""
        ...

    def customer_history(self, number: str) -> Sequence[ConsentEvent]:
        """One customer's whole consent history (for a receipt); logged as a read."""
        ...

    def agents(self) -> Sequence[str]:
        """Agents the viewer may filter by."""
        ...

    def teams(self) -> Sequence[str]:
        """Teams the viewer may filter by."""
        ...

    def record_flag(self, note: FlagNote) -> Flag:
        """Append a flag or its resolution (idempotent by ``note.record_id``)."""
        ...

    def flags(self, *, open_only: bool = True) -> Sequence[Flag]:
        """Flags in the viewer's scope, newest first."""
        ...

    def request_queue(self, today: date) -> Sequence[QueueItem]:
        """Open privacy requests in the viewer's scope, in queue order."""
        ...

    def move_request(self, change: RequestChange) -> PrivacyRequest:
        """Append a lead's status move (checked with :func:`lead_move` first)."""
        ...

    def figures(self, first_day: date, last_day: date, *, tz: tzinfo) -> Figures:
        """Figures for local calendar days *first_day* to *last_day* inclusive."""
        ...

    def log_read(self, read: ReadAccess) -> None:
        """Append one read to the read-access log."""
        ...

    def read_log(self, flt: ReadLogFilter) -> Sequence[ReadLogEntry]:
        """Reads in scope, newest first."""
        ...

    def verify(self) -> IntegrityReport:
        """Check the ledger's hash chain end to end."""
        ...

    def close(self) -> None: ...


# --- time: UTC inside, local on screen -------------------------------------------


class SystemLocal(tzinfo):
    """The operating system's local time, DST rules included, when no IANA name is
    known (Windows without ``general.timezone``). Offsets come from the C library
    for each instant; wall times repeated by DST are told apart by ``fold``."""

    @staticmethod
    def _wall(stamp: float) -> tuple[int, ...]:
        return tuple(_time.localtime(stamp)[:6])

    def _stamp(self, dt: datetime) -> float:
        """The epoch instant of a local wall time (PEP 495 rules for folds and gaps)."""
        naive = dt.replace(tzinfo=None, fold=0)
        as_utc = calendar.timegm(naive.timetuple()) + naive.microsecond / 1e6
        wall = tuple(naive.timetuple()[:6])
        before = _time.localtime(as_utc - 86400).tm_gmtoff
        after = _time.localtime(as_utc + 86400).tm_gmtoff
        valid = sorted({c for c in (as_utc - before, as_utc - after) if self._wall(c) == wall})
        if not valid:  # skipped by DST: read with the offset from before the change
            return as_utc - before
        return valid[min(dt.fold, len(valid) - 1)]

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(seconds=-_time.timezone)
        return timedelta(seconds=_time.localtime(self._stamp(dt)).tm_gmtoff)

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None or _time.localtime(self._stamp(dt)).tm_isdst <= 0:
            return timedelta(0)
        return timedelta(seconds=_time.timezone - _time.altzone)

    def tzname(self, dt: datetime | None) -> str:
        if dt is None:
            return _time.tzname[0]
        return _time.localtime(self._stamp(dt)).tm_zone

    def fromutc(self, dt: datetime) -> datetime:
        stamp = calendar.timegm(dt.timetuple()) + dt.microsecond / 1e6
        wall = dt + timedelta(seconds=_time.localtime(stamp).tm_gmtoff)
        if self._stamp(wall.replace(fold=0)) != stamp:
            wall = wall.replace(fold=1)  # the second pass through a repeated hour
        return wall

    def __repr__(self) -> str:
        return "SystemLocal()"

    def __str__(self) -> str:
        return "local time"


def local_zone(name: str = "") -> tzinfo:
    """The desk's time zone: *name* (``general.timezone``), ``TZ``, the system's
    IANA zone, else the system's local rules."""
    candidates = [n for n in (name.strip(), os.environ.get("TZ", "").lstrip(":")) if n]
    try:
        link = Path("/etc/localtime").resolve()
        if "zoneinfo" in link.parts:
            candidates.append("/".join(link.parts[link.parts.index("zoneinfo") + 1 :]))
    except OSError:
        pass
    for candidate in candidates:
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return SystemLocal()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant a local calendar day starts (DST days are 23 or 25 hours)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_days(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """UTC ``[since, until)`` covering local days *first* to *last* inclusive."""
    if last < first:
        raise DomainError("the date range ends before it starts")
    return local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)


def day_bounds(first: date, last: date, tz: tzinfo) -> list[tuple[date, datetime, datetime]]:
    """Each local day in the range with its UTC start and end."""
    out: list[tuple[date, datetime, datetime]] = []
    day = first
    while day <= last:
        nxt = day + timedelta(days=1)
        out.append((day, local_midnight(day, tz), local_midnight(nxt, tz)))
        day = nxt
    return out


def format_local(at: datetime, tz: tzinfo, *, seconds: bool = False) -> str:
    """``2025-03-30 03:15 CEST`` — always with the zone, so DST is never ambiguous."""
    local = require_utc(at, "time").astimezone(tz)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


# --- JSON back into dataclasses --------------------------------------------------

T = TypeVar("T")


def from_jsonable(cls: type[T], data: Any) -> T:
    """Inverse of ``model.to_jsonable`` for the dataclasses of this module and incident.

    Raises DomainError on anything malformed, so a server can answer 422.
    """
    try:
        return typing.cast(T, _decode(cls, data))
    except DomainError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DomainError(f"malformed {getattr(cls, '__name__', 'value')}: {exc}") from exc


def _decode(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors: list[str] = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _decode(arg, value)
            except (DomainError, KeyError, TypeError, ValueError, AttributeError) as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or "no matching type")
    if origin in (tuple, list, frozenset, set):
        if not isinstance(value, list):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        items = [_decode(item, v) for v in value]
        return frozenset(items) if origin in (frozenset, set) else tuple(items)
    if tp is Any:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an object for {tp.__name__}")
        hints = typing.get_type_hints(tp)
        kwargs = {
            f.name: _decode(hints[f.name], value[f.name])
            for f in dataclasses.fields(tp)
            if f.init and f.name in value
        }
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if tp is uuid.UUID:
        return uuid.UUID(str(value))
    if tp is datetime:
        return require_utc(datetime.fromisoformat(str(value)), "timestamp")
    if tp is date:
        return date.fromisoformat(str(value))
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError("expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected a whole number")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError("expected text")
        return value
    raise TypeError(f"cannot decode {tp!r}")
