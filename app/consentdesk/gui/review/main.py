"""Run the review window on its own (``consentdesk review``)."""

from __future__ import annotations

from collections.abc import Callable

from consentdesk.cli.common import Context
from consentdesk.core.export import Controller
from consentdesk.core.review import ReviewSource, Viewer, local_zone


def run_review(ctx: Context, viewer: Viewer, open_source: Callable[[], ReviewSource]) -> int:
    """Open the review window and run until the lead closes it."""
    from consentdesk.gui.app import create_app
    from consentdesk.gui.review.window import ReviewWindow

    app = create_app()
    window = ReviewWindow(
        open_source,
        viewer,
        region=ctx.region,
        controller=Controller.from_config(ctx.config),
        tz=local_zone(str(ctx.config.get("general.timezone"))),
    )
    window.show()
    try:
        return int(app.exec())
    finally:
        window.shutdown()
