"""Run the review window on its own (``consentdesk review``)."""

from __future__ import annotations

from collections.abc import Callable

from consentdesk.domain.export import Controller
from consentdesk.domain.review import ReviewSource, Viewer, local_zone
from consentdesk.platform.context import Context


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
