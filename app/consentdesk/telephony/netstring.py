"""Incremental netstring decoding (``<len>:<payload>,``) for ctrl_tcp streams.

Bytes arrive in arbitrary pieces: a frame may be split across reads and one
read may hold several frames. The decoder never buffers more than the
configured frame size plus a header, so a hostile or broken peer cannot make
it grow without bound or wait forever on a header that will never end.
"""

from __future__ import annotations

import logging

log = logging.getLogger("consentdesk.telephony")

DEFAULT_MAX_FRAME = 64 * 1024
# A length header may name any size up to 10**20 - 1 bytes: an oversized frame
# is skipped by its length, so its header must still be read in full.
MAX_HEADER_DIGITS = 20


class NetstringError(Exception):
    """The stream is not netstring-framed; it cannot be resynchronised in place.

    The message describes the defect only (sizes, byte positions), never the
    payload, so it is safe to log.
    """


def encode(payload: bytes) -> bytes:
    """Frame *payload* as a netstring."""
    return b"%d:%s," % (len(payload), payload)


class NetstringDecoder:
    """Feed raw bytes in, get whole payloads out.

    A frame longer than ``max_frame`` is skipped without being buffered (its
    length is known, so the stream stays in step) and logged once. A malformed
    header or a missing trailing comma raises :class:`NetstringError`; after
    that the decoder refuses more input until :meth:`reset`, because the frame
    boundaries are lost and the only safe resync is a new connection.
    """

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 1:
            raise ValueError("max_frame must be positive")
        self.max_frame = max_frame
        self._max_header = MAX_HEADER_DIGITS + 1
        self.dropped = 0
        self.reset()

    def reset(self) -> None:
        self._buf = bytearray()
        self._need: int | None = None  # payload length of the frame being read
        self._skip = 0  # bytes of an oversized frame still to discard
        self._skipping = False
        self._broken: str | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Consume *data*; return every payload it completes, in order."""
        if self._broken is not None:
            raise NetstringError(self._broken)
        self._buf += data
        out: list[bytes] = []
        try:
            while self._step(out):
                pass
        except NetstringError as exc:
            self._broken = str(exc)
            self._buf.clear()
            raise
        return out

    def _step(self, out: list[bytes]) -> bool:
        """Make one unit of progress; False when more input is needed."""
        if self._skipping:
            return self._discard()
        if self._need is None:
            return self._header()
        need = self._need
        if len(self._buf) < need + 1:
            return False
        if self._buf[need] != ord(","):
            raise NetstringError(f"frame of {need} bytes does not end with ','")
        out.append(bytes(self._buf[:need]))
        del self._buf[: need + 1]
        self._need = None
        return True

    def _header(self) -> bool:
        colon = self._buf.find(b":", 0, self._max_header + 1)
        if colon < 0:
            if len(self._buf) > self._max_header:
                raise NetstringError(f"no length header within {self._max_header} bytes")
            if self._buf and not self._buf.isdigit():
                raise NetstringError("length header is not a decimal number")
            return False
        digits = bytes(self._buf[:colon])
        if not digits or not digits.isdigit():
            raise NetstringError("length header is not a decimal number")
        if len(digits) > 1 and digits[0] == ord("0"):
            raise NetstringError("length header has a leading zero")
        length = int(digits)
        del self._buf[: colon + 1]
        if length > self.max_frame:
            log.warning(
                "netstring frame of %d bytes exceeds the %d byte limit; skipped",
                length,
                self.max_frame,
            )
            self.dropped += 1
            self._skipping = True
            self._skip = length
            return True
        self._need = length
        return True

    def _discard(self) -> bool:
        if self._skip:
            take = min(self._skip, len(self._buf))
            del self._buf[:take]
            self._skip -= take
            if self._skip:
                return False
        if not self._buf:
            return False
        if self._buf[0] != ord(","):
            raise NetstringError("skipped oversized frame does not end with ','")
        del self._buf[:1]
        self._skipping = False
        return True

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame (for tests and metrics)."""
        return len(self._buf)
