"""Single sidebar instance per user and data folder, fed with calls over QLocalServer.

The server accepts the frames described in :mod:`consentdesk.telephony.handoff`
(4-byte length + JSON, at most 8 KiB), answers each with ``{"ok": …}`` and
emits the call it carried. The socket is restricted to the current user
(``UserAccessOption``; on POSIX it also lives in the user's private runtime
folder). A socket left behind by a crash is detected by a failed connect (and
the instance lock being free) and removed with ``QLocalServer.removeServer``
before listening again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from consentdesk.telephony.events import CallEvent
from consentdesk.telephony.handoff import (
    Delivery,
    FrameReader,
    HandoffError,
    InstanceLock,
    InstancePaths,
    Outcome,
    call_message,
    control_message,
    decode_body,
    drain_spool,
    encode_message,
    event_from_message,
    release_launch,
)
from consentdesk.telephony.handoff_client import default_data_dir, reply_outcome

log = logging.getLogger("consentdesk.ipc")

CLIENT_IDLE_MS = 2000  # a client that sends nothing for this long is dropped
MAX_CLIENTS = 16


class _Client:
    """One connection: read frames, answer each, drop on garbage or idleness.

    A plain object: the socket (a child of the QLocalServer) owns the idle
    timer, so closing the server tears everything down in one place.
    """

    def __init__(self, socket: QLocalSocket, server: InstanceServer) -> None:
        self.socket = socket
        self.server = server
        self.reader = FrameReader()
        self.idle = QTimer(socket)
        self.idle.setSingleShot(True)
        self.idle.timeout.connect(self._timed_out)
        self.idle.start(CLIENT_IDLE_MS)
        socket.readyRead.connect(self._read)
        socket.disconnected.connect(self._gone)

    def _read(self) -> None:
        data = bytes(self.socket.readAll().data())
        try:
            for body in self.reader.feed(data):
                message = decode_body(body)
                if message["kind"] in ("call", "hook", "uri"):
                    # The sidebar normalises the number: the client stays lean.
                    message = {"kind": "call", "event": self.server.to_event(message)}
                self._reply({"ok": True})
                self.server._deliver(message)
        except HandoffError as exc:
            log.warning("rejected a hand-off message: %s", exc)
            self._reply({"ok": False, "error": str(exc)})
            self.socket.disconnectFromServer()
            return
        self.idle.start(CLIENT_IDLE_MS)

    def _reply(self, reply: dict[str, object]) -> None:
        self.socket.write(encode_message(reply))
        self.socket.flush()

    def _timed_out(self) -> None:
        log.info("dropped an idle hand-off connection")
        self.socket.abort()

    def _gone(self) -> None:
        self.idle.stop()
        if self.server._forget(self):
            self.socket.deleteLater()


class InstanceServer(QObject):
    """The running sidebar's end of the hand-off.

    Signals:
        call_received(object): a ``CallEvent`` from ``consentdesk call``/``open-uri``
            (``call_id`` may be ``""``: the softphone named none).
        show_requested(): another ``consentdesk`` start asked this one to come forward.
    """

    call_received = Signal(object)
    show_requested = Signal()

    def __init__(
        self,
        paths: InstancePaths,
        parent: QObject | None = None,
        *,
        alias: InstancePaths | None = None,
    ) -> None:
        super().__init__(parent)
        self.paths = paths
        # The default data folder's sidebar is also reachable under a fixed
        # name (a symlink), so ``consentdesk call`` without --data-dir need not
        # work out the default folder before it can hand over.
        self.alias = alias
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.setMaxPendingConnections(MAX_CLIENTS)
        self._server.newConnection.connect(self._accept)
        self._clients: list[_Client] = []
        self._lock = InstanceLock(paths.lock_file)
        # Region for numbers handed over as typed (set by the telephony wiring).
        self.region = ""

    def to_event(self, message: dict[str, object]) -> CallEvent:
        """The call a hand-off message carries; HandoffError says why not."""
        return event_from_message(message, region=self.region)

    @property
    def name(self) -> str:
        return self.paths.server_name

    def listen(self) -> bool:
        """Listen, clearing a stale socket first; False if another instance runs."""
        name = self.paths.server_name
        if _instance_answers(name) or not self._lock.acquire():
            return False
        # We hold the instance lock, so whatever socket is left under the name
        # belongs to a sidebar that died without cleaning up.
        if os.name != "nt" and Path(name).exists():
            log.info("removing a stale hand-off socket left by an earlier sidebar")
            QLocalServer.removeServer(name)
        if not self._server.listen(name):
            log.warning("cannot listen for hand-offs: %s", self._server.errorString())
            self._lock.release()
            return False
        release_launch(self.paths)
        if self.alias is not None:
            self._link_alias(self.alias.server_name)
        return True

    def _link_alias(self, alias: str) -> None:
        tmp = f"{alias}.{os.getpid()}.tmp"
        try:
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.paths.server_name, tmp)
            os.replace(tmp, alias)
        except OSError as exc:
            log.warning("cannot make the default hand-off alias: %s", exc.strerror or exc)

    def _unlink_alias(self) -> None:
        if self.alias is None:
            return
        alias = self.alias.server_name
        try:
            if os.readlink(alias) == self.paths.server_name:
                os.unlink(alias)
        except OSError:
            pass  # gone, or replaced by another sidebar's: not ours to remove

    def drain(self) -> int:
        """Deliver calls spooled while no sidebar listened; returns how many."""
        events = drain_spool(self.paths, region=self.region)
        for event in events:
            self.call_received.emit(event)
        return len(events)

    def close(self) -> None:
        """Stop listening and drop open connections (idempotent)."""
        self._server.close()
        clients, self._clients = self._clients, []
        for client in clients:
            client.idle.stop()
            client.socket.abort()
        if self._lock.held:
            self._unlink_alias()
        self._lock.release()

    @Slot()
    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            if len(self._clients) >= MAX_CLIENTS:
                log.warning("too many hand-off connections; refusing one")
                socket.abort()
                socket.deleteLater()
                continue
            self._clients.append(_Client(socket, self))

    def _forget(self, client: _Client) -> bool:
        if client in self._clients:
            self._clients.remove(client)
            return True
        return False

    def _deliver(self, message: dict[str, object]) -> None:
        kind = message["kind"]
        if kind == "call":
            self.call_received.emit(message["event"])
        elif kind == "drain":
            self.drain()
        else:
            self.show_requested.emit()


def _instance_answers(name: str, timeout_ms: int = 300) -> bool:
    probe = QLocalSocket()
    probe.connectToServer(name)
    answered = probe.waitForConnected(timeout_ms)
    probe.abort()
    return answered


def claim_instance(data_dir: Path) -> InstanceServer | None:
    """Become the sidebar for *data_dir*, or None if one already runs.

    When one runs it is asked to come forward, so a second ``consentdesk``
    start simply shows the first. Needs a Q(Core)Application.
    """
    alias = None
    if os.name != "nt" and os.path.realpath(data_dir) == os.path.realpath(default_data_dir()):
        alias = InstancePaths.default_alias()
    server = InstanceServer(InstancePaths.for_data_dir(data_dir), alias=alias)
    if server.listen():
        return server
    send_message(server.paths, control_message("show"), timeout_ms=1000)
    return None


def send_message(
    paths: InstancePaths, message: dict[str, object], *, timeout_ms: int, ack_ms: int | None = None
) -> Outcome:
    """Qt client (all platforms; the CLI uses handoff_client's socket client on POSIX)."""
    frame = encode_message(message)
    ack_ms = timeout_ms if ack_ms is None else ack_ms
    sock = QLocalSocket()
    try:
        sock.connectToServer(paths.server_name)
        if not sock.waitForConnected(timeout_ms):
            return Outcome(Delivery.UNREACHABLE)
        sock.write(frame)
        if not sock.waitForBytesWritten(ack_ms):
            return Outcome(Delivery.UNREACHABLE)
        reader = FrameReader()
        while sock.waitForReadyRead(ack_ms):
            for body in reader.feed(bytes(sock.readAll().data())):
                return reply_outcome(body)
        return Outcome(Delivery.SENT, f"no answer within {ack_ms} ms")
    except HandoffError as exc:
        return Outcome(Delivery.SENT, str(exc))
    finally:
        sock.abort()


def send_to_running(event: CallEvent, timeout_ms: int = 150, *, paths: InstancePaths) -> bool:
    """Hand *event* to the running sidebar; True if it has it (acknowledged, or
    written to a connected sidebar that is slow to answer)."""
    return send_message(paths, call_message(event), timeout_ms=timeout_ms).delivery.delivered
