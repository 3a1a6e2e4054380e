"""Real baresip and sipp on loopback for softphone tests and the screen-pop benchmark."""

from __future__ import annotations

import contextlib
import csv
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .helpers import HERE, LineProcess

CALL_SCENARIO = HERE / "sipp_uac_call.xml"  # answered, held, BYE
CANCEL_SCENARIO = HERE / "sipp_uac_cancel.xml"  # rings, then the caller gives up

BARESIP_CONFIG = """\
poll_method		epoll
sip_listen		127.0.0.1:{sip_port}
call_local_timeout	120
call_max_calls		8
audio_player		aubridge,nil
audio_source		aubridge,nil
audio_alert		aubridge,nil
module_path		{module_path}
module			g711.so
module			aubridge.so
module_tmp		account.so
module_app		menu.so
module_app		ctrl_tcp.so
ctrl_tcp_listen		127.0.0.1:{ctrl_port}
"""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def module_path() -> str:
    for candidate in ("/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules"):
        if Path(candidate, "ctrl_tcp.so").exists():
            return candidate
    raise RuntimeError("baresip modules (ctrl_tcp.so) not found")


class Baresip:
    """One baresip with ctrl_tcp and a UDP SIP listener, restartable on the same ports."""

    def __init__(self, workdir: Path, *, answermode: str = "manual") -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.sip_port = free_port(socket.SOCK_DGRAM)
        self.ctrl_port = free_port()
        (self.dir / "config").write_text(
            BARESIP_CONFIG.format(
                sip_port=self.sip_port, ctrl_port=self.ctrl_port, module_path=module_path()
            ),
            encoding="utf-8",
        )
        (self.dir / "accounts").write_text(
            f"<sip:agent@127.0.0.1>;regint=0;answermode={answermode}\n", encoding="utf-8"
        )
        (self.dir / "contacts").write_text("", encoding="utf-8")
        self.proc: LineProcess | None = None

    @property
    def ctrl_address(self) -> str:
        return f"127.0.0.1:{self.ctrl_port}"

    def start(self) -> None:
        assert self.proc is None
        self.proc = LineProcess(["baresip", "-f", str(self.dir)])
        while "baresip is ready" not in self.proc.expect("", timeout=15):
            pass

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.proc.terminate()
            self.proc.stop()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class SippResult:
    returncode: int
    invites: list[float]  # wall-clock time each INVITE was sent (sipp's own log)
    stderr: str


class Sipp:
    """sipp placing calls from one caller to a baresip, with its trace in *workdir*."""

    def __init__(
        self,
        workdir: Path,
        target_port: int,
        *,
        user: str,
        host: str = "127.0.0.1",
        params: str = "",
        display: str = "",
        hold_ms: int = 1500,
        calls: int = 1,
        rate: float = 100.0,  # calls per second; also how soon the first INVITE goes out
        scenario: Path = CALL_SCENARIO,
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            "sipp",
            "-sf",
            str(scenario),
            "-s",
            "agent",
            "-key",
            "from_user",
            user,
            "-key",
            "from_host",
            host,
            "-key",
            "from_params",
            params,
            "-key",
            "from_display",
            display,
            "-d",
            str(hold_ms),
            "-m",
            str(calls),
            "-r",
            str(rate),
            "-l",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port(socket.SOCK_DGRAM)),
            "-mp",
            str(free_port(socket.SOCK_DGRAM)),
            "-nostdin",
            "-timeout",
            "120",
            "-timeout_error",
            "-trace_shortmsg",
            f"127.0.0.1:{target_port}",
        ]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def invites(self) -> list[float]:
        """Send times of the INVITEs so far (column 3 of -trace_shortmsg: epoch seconds)."""
        times = []
        for log in self.dir.glob("*_shortmessages.log"):
            with log.open(newline="", encoding="utf-8", errors="replace") as fh:
                for row in csv.reader(fh, delimiter="\t"):
                    if len(row) > 6 and row[3] == "S" and row[6].startswith("INVITE "):
                        times.append(float(row[2]))
        return sorted(times)

    def finish(self, timeout: float = 60) -> SippResult:
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return SippResult(self.proc.returncode, self.invites(), err)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.communicate()
