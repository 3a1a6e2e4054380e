"""A second process holding (or trying to hold) the sidebar instance, for IPC tests.

Usage: python ipc_peer.py DATA_DIR
Prints ``READY`` once listening (``ALREADY`` and exit 3 if another instance
answers), then one line per hand-off: ``CALL <json>`` or ``SHOW``. Exits when
stdin closes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSocketNotifier

from consentdesk.domain.model import to_jsonable
from consentdesk.gui.ipc import claim_instance


def main() -> int:
    app = QCoreApplication(sys.argv[:1])
    server = claim_instance(Path(sys.argv[1]))
    if server is None:
        print("ALREADY", flush=True)
        return 3
    server.call_received.connect(
        lambda event: print("CALL", json.dumps(to_jsonable(event)), flush=True)
    )
    server.show_requested.connect(lambda: print("SHOW", flush=True))
    drained = server.drain()
    print("READY", drained, flush=True)
    notifier = QSocketNotifier(sys.stdin.fileno(), QSocketNotifier.Type.Read)

    def stdin_ready() -> None:
        if not sys.stdin.readline():
            server.close()
            app.quit()

    notifier.activated.connect(stdin_ready)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
