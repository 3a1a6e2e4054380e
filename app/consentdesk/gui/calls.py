"""Which caller is on screen: the active call, calls waiting, manual calls and lookups."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from consentdesk.telephony.events import CallEvent, CallPhase, CallSource

log = logging.getLogger("consentdesk.gui.calls")

# Calls listed in the call bar. More ringing calls than this (a retry storm, a
# misbehaving PBX) are counted as surplus: the newest are listed, and a surplus
# call takes a freed place while it still rings.
MAX_WAITING = 8
# Surplus calls remembered (newest kept) so their end or answer is recognised.
MAX_SURPLUS = 1024


def new_manual_call_id() -> str:
    """Call id of a call the agent started by hand (no softphone reported it)."""
    return f"manual-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class Call:
    """One caller session on the sidebar.

    ``call_id`` is None for a lookup (the agent typed a number with no call):
    captures made then carry no call id.
    """

    call_id: str | None
    source: CallSource
    number: str | None
    raw_number: str = ""
    display_name: str = ""
    phase: CallPhase | None = None
    incoming_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    verified_by: str | None = None

    @property
    def is_lookup(self) -> bool:
        return self.call_id is None

    @property
    def is_live(self) -> bool:
        """A call still going on (lookups are never live)."""
        return self.call_id is not None and self.phase != CallPhase.ENDED

    @property
    def is_manual(self) -> bool:
        return self.source == CallSource.MANUAL


class CallController(QObject):
    """Turns call events from any source into "who is on screen".

    Feed it with :meth:`handle` (a slot taking a ``CallEvent``): baresip, the
    command-line and URI hand-offs and the manual-call button all arrive the
    same way. Rules: an incoming call pops onto the screen unless another call
    is live, in which case it waits (call waiting) and can be switched to;
    answering a waiting call makes it the active one; when the active call ends
    its caller leaves the screen after ``clear_after_seconds`` (while a capture
    is still being recorded the clearing waits for it).

    After-call work: while the caller on screen is *held* (:meth:`hold`, a
    capture form is open) nothing takes them off the screen on its own: a
    hang-up leaves them (and the form) there, and new or answered calls wait in
    the call bar. Only the agent's own actions (look up, switch, close) replace
    a held caller, and the window asks before those.

    Signals:
        active_changed(object): a different caller is on screen (a ``Call``), or
            nobody (``None``). Any open capture flow belongs to the old caller.
        active_updated(object): the active ``Call`` changed phase (answered:
            the timer starts; ended: it stops) or identity verification.
        waiting_changed(object): tuple of ``Call`` waiting or on hold (at most
            :data:`MAX_WAITING`; :attr:`surplus` counts ringing calls not listed).
        popped(object): a new incoming ``Call`` arrived; the window should come
            forward without taking keyboard focus from the softphone.
        event_accepted(object): every ``CallEvent`` handled, after the update.
        link_changed(bool, str): the softphone link went up/down, with a
            detail for the status line.
    """

    active_changed = Signal(object)
    active_updated = Signal(object)
    waiting_changed = Signal(object)
    popped = Signal(object)
    event_accepted = Signal(object)
    link_changed = Signal(bool, str)

    def __init__(self, *, clear_after_seconds: int = 5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._active: Call | None = None
        self._waiting: list[Call] = []
        self._surplus: OrderedDict[str, Call] = OrderedDict()  # oldest first
        self.surplus_total = 0  # calls ever pushed out of the list (for logs/tests)
        self.clear_after_seconds = clear_after_seconds
        self._clear_timer = QTimer(self)
        self._clear_timer.setSingleShot(True)
        self._clear_timer.timeout.connect(self._clear_due)
        self._clear_blockers: set[object] = set()
        self._holders: set[object] = set()
        self._clear_pending = False
        self.link_up: bool | None = None
        self.link_detail = ""

    # --- state ---------------------------------------------------------------

    @property
    def active(self) -> Call | None:
        return self._active

    @property
    def waiting(self) -> tuple[Call, ...]:
        return tuple(self._waiting)

    @property
    def surplus(self) -> int:
        """Ringing calls not listed because the waiting list is full."""
        return len(self._surplus)

    @property
    def clearing(self) -> bool:
        """The active caller has hung up and will leave the screen shortly."""
        return self._clear_timer.isActive() or self._clear_pending

    def find(self, call_id: str) -> Call | None:
        if self._active is not None and self._active.call_id == call_id:
            return self._active
        return next((c for c in self._waiting if c.call_id == call_id), None)

    # --- input ---------------------------------------------------------------

    @Slot(object)
    def handle(self, event: CallEvent) -> None:
        """Apply one call event from any connector (safe to repeat)."""
        if not isinstance(event, CallEvent):
            raise TypeError("CallController.handle takes a CallEvent")
        known = self.find(event.call_id)
        if known is None and event.call_id in self._surplus:
            self._surplus_event(event)
        elif event.phase == CallPhase.ANSWERED:
            self._answered(event, known)
        elif known is None:
            if event.phase == CallPhase.INCOMING:
                self._incoming(self._new_call(event))
        elif event.phase == CallPhase.ENDED:
            self._ended(event, known)
        log.debug("call event %s from %s", event.phase, event.source)
        self.event_accepted.emit(event)

    def manual_call(self, number: str, *, display_name: str = "") -> Call:
        """Start a call the softphone did not report (timer runs, captures get its id)."""
        call_id = new_manual_call_id()
        self.handle(
            CallEvent(
                phase=CallPhase.ANSWERED,
                call_id=call_id,
                source=CallSource.MANUAL,
                number=number,
                raw_number=number,
                display_name=display_name,
            )
        )
        active = self._active
        assert active is not None and active.call_id == call_id
        return active

    def look_up(self, number: str) -> Call:
        """Show a caller without a call; a live call stays, waiting, to switch back to."""
        lookup = Call(call_id=None, source=CallSource.MANUAL, number=number, raw_number=number)
        previous = self._active
        if previous is not None and previous.is_live:
            self._waiting.insert(0, previous)
            self._trim_waiting()
            self.waiting_changed.emit(self.waiting)
        self._set_active(lookup)
        return lookup

    def end_active(self) -> None:
        """The agent ends a manual call or closes a lookup / stale caller now."""
        active = self._active
        if active is None:
            return
        if active.is_manual and active.is_live and active.call_id is not None:
            self.handle(
                CallEvent(CallPhase.ENDED, active.call_id, CallSource.MANUAL, active.number)
            )
            return
        self._clear_timer.stop()
        self._clear_pending = False
        self._set_active(None)
        self._promote_waiting()

    def switch_to(self, call_id: str) -> None:
        """Make a waiting call the one on screen (the current live call waits)."""
        target = next((c for c in self._waiting if c.call_id == call_id), None)
        if target is None:
            return
        self._waiting.remove(target)
        previous = self._active
        if previous is not None and previous.is_live:
            self._waiting.insert(0, previous)
        self._trim_waiting()
        self._refill_waiting()
        self.waiting_changed.emit(self.waiting)
        self._set_active(target)

    def set_verified(self, method: str | None) -> None:
        """Record (for this call only) how the caller's identity was checked."""
        if self._active is None:
            return
        self._active = dataclasses.replace(self._active, verified_by=method)
        self.active_updated.emit(self._active)

    def set_link_state(self, up: bool, detail: str = "") -> None:
        """Connectors report whether the softphone link works (shown in the sidebar)."""
        if (up, detail) == (self.link_up, self.link_detail):
            return
        self.link_up, self.link_detail = up, detail
        self.link_changed.emit(up, detail)

    def block_clear(self, token: object) -> None:
        """Keep the caller on screen until :meth:`unblock_clear` (a capture in flight)."""
        self._clear_blockers.add(token)

    def unblock_clear(self, token: object) -> None:
        self._clear_blockers.discard(token)
        self._clear_again()

    @property
    def held(self) -> bool:
        """The caller on screen has work open (a form) and stays until it is done."""
        return bool(self._holders)

    def hold(self, token: object) -> None:
        """Keep the caller on screen, and let other calls wait, until :meth:`release`."""
        self._holders.add(token)

    def release(self, token: object) -> None:
        """The work is done: an ended call leaves the screen ``clear_after_seconds``
        from now (time to read the confirmation), then a waiting call comes up."""
        if token not in self._holders:
            return
        self._holders.discard(token)
        if self._holders:
            return
        active = self._active
        if active is not None and active.phase == CallPhase.ENDED:
            self._clear_pending = False
            self._clear_timer.start(max(self.clear_after_seconds, 0) * 1000)
        elif active is None:
            self._promote_waiting()

    def _clear_again(self) -> None:
        if self._clear_pending and not self._clear_blockers and not self._holders:
            self._clear_due()

    # --- transitions ---------------------------------------------------------

    def _new_call(self, event: CallEvent) -> Call:
        return Call(
            call_id=event.call_id,
            source=event.source,
            number=event.number,
            raw_number=event.raw_number,
            display_name=event.display_name,
            phase=CallPhase.INCOMING,
            incoming_at=event.at,
        )

    def _incoming(self, call: Call) -> None:
        active = self._active
        if active is not None and (active.is_live or self._holders):
            self._waiting.append(call)
            self._trim_waiting()
            self.waiting_changed.emit(self.waiting)
        else:
            self._set_active(call)
        self.popped.emit(call)

    def _trim_waiting(self) -> None:
        """Keep the list at MAX_WAITING by moving the oldest ringing calls to surplus
        (calls on hold, which the agent has spoken to, always stay listed)."""
        while len(self._waiting) > MAX_WAITING:
            oldest = next((c for c in self._waiting if c.answered_at is None), None)
            if oldest is None or oldest.call_id is None:
                return
            self._waiting.remove(oldest)
            self._surplus[oldest.call_id] = oldest
            self.surplus_total += 1
            if self.surplus_total in (1, 100) or self.surplus_total % 10_000 == 0:
                log.warning("call flood: %d calls beyond the waiting list", self.surplus_total)
            while len(self._surplus) > MAX_SURPLUS:
                self._surplus.popitem(last=False)

    def _refill_waiting(self) -> None:
        """A place in the list freed up: the newest surplus call takes it."""
        while self._surplus and len(self._waiting) < MAX_WAITING:
            _call_id, call = self._surplus.popitem(last=True)
            self._waiting.append(call)

    def _surplus_event(self, event: CallEvent) -> None:
        """An unlisted call ended or was answered (a repeat INCOMING changes nothing)."""
        if event.phase == CallPhase.INCOMING:
            return
        call = self._surplus.pop(event.call_id)
        if event.phase == CallPhase.ENDED:
            self.waiting_changed.emit(self.waiting)
            return
        self._waiting.append(call)  # answered in the softphone: it becomes active
        self._answered(event, call)

    def _answered(self, event: CallEvent, known: Call | None) -> None:
        call = known or self._new_call(event)
        answered = dataclasses.replace(
            call,
            phase=CallPhase.ANSWERED,
            answered_at=call.answered_at or event.at,
            incoming_at=call.incoming_at or event.at,
        )
        if known is not None and known is self._active:
            self._active = answered
            self.active_updated.emit(answered)
            return
        if self._holders:
            # Answered on the softphone while a form is open: it waits in the call bar.
            if known is not None:
                self._waiting.remove(known)
            self._waiting.insert(0, answered)
            self.waiting_changed.emit(self.waiting)
            return
        if known is not None:
            self._waiting.remove(known)
        previous = self._active
        if previous is not None and previous.is_live:
            self._waiting.insert(0, previous)  # on hold while the agent talks to the new one
        self._trim_waiting()
        self._refill_waiting()
        self.waiting_changed.emit(self.waiting)
        self._set_active(answered)

    def _ended(self, event: CallEvent, known: Call) -> None:
        if known is not self._active:
            self._waiting.remove(known)
            self._refill_waiting()
            self.waiting_changed.emit(self.waiting)
            return
        if known.phase == CallPhase.ENDED:
            return
        self._active = dataclasses.replace(known, phase=CallPhase.ENDED, ended_at=event.at)
        self.active_updated.emit(self._active)
        self._clear_timer.start(max(self.clear_after_seconds, 0) * 1000)

    def _clear_due(self) -> None:
        if self._clear_blockers or self._holders:
            self._clear_pending = True
            return
        self._clear_pending = False
        active = self._active
        if active is not None and active.phase == CallPhase.ENDED:
            self._set_active(None)
            self._promote_waiting()

    def _promote_waiting(self) -> None:
        if self._active is None and self._waiting:
            nxt = self._waiting.pop(0)
            self._refill_waiting()
            self.waiting_changed.emit(self.waiting)
            self._set_active(nxt)

    def _set_active(self, call: Call | None) -> None:
        self._clear_timer.stop()
        self._clear_pending = False
        self._active = call
        self.active_changed.emit(call)
