"""The sidebar's way into the review window: shown to leads and admins only, opened
on the worker (so the click never stalls the GUI thread), closed with the sidebar."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QToolButton

from consentdesk.gui import theme
from consentdesk.gui.desk import Desk
from consentdesk.gui.tasks import describe_error
from consentdesk.gui.widgets import StateChip

if TYPE_CHECKING:
    from consentdesk.domain.backend import Backend
    from consentdesk.domain.review import ReviewSource
    from consentdesk.gui.review.window import ReviewWindow


class ReviewMixin:
    """Review access for :class:`~consentdesk.gui.window.SidebarWindow`."""

    desk: Desk
    review_window: ReviewWindow | None
    review_button: QToolButton
    review_error: StateChip
    actions_by_name: dict[str, QAction]
    _review_pending: bool
    _side_windows_closed: bool

    def _refresh_review_access(self) -> None:
        """Leads and admins see the Review action; agents neither see nor reach it."""
        allowed = self.desk.can_review
        self.review_button.setVisible(allowed)
        action = self.actions_by_name["review"]
        action.setVisible(allowed)
        action.setEnabled(allowed)

    def open_review(self) -> None:
        """Open the review window on this sidebar's backend (or bring it forward)."""
        if not self.desk.can_review or self._side_windows_closed or self._review_pending:
            return
        shown = self.review_window
        if shown is not None and shiboken6.isValid(shown) and shown.isVisible():
            shown.raise_()
            shown.activateWindow()
            return
        self.review_error.hide()
        self._review_pending = True
        self.review_button.setEnabled(False)
        viewer = self.desk.viewer()
        zone = str(self.desk.config.get("general.timezone"))

        def prepare(backend: Backend) -> tuple[ReviewSource, tzinfo]:
            # Loaded here, on the worker, so the click does not stall the GUI thread.
            import consentdesk.gui.review.window  # noqa: F401
            from consentdesk.domain.review import local_zone
            from consentdesk.stores.review_access import review_source_for

            return review_source_for(backend, viewer), local_zone(zone)

        self.desk.runner.call(
            prepare, on_success=self._show_review, on_failure=self._review_failed, label="review"
        )

    def _show_review(self, prepared: tuple[ReviewSource, tzinfo]) -> None:
        from consentdesk.domain.export import Controller
        from consentdesk.gui.review.window import ReviewWindow

        source, tz = prepared
        self._review_pending = False
        self.review_button.setEnabled(True)
        if self._side_windows_closed:
            source.close()
            return
        self._close_review()
        window = ReviewWindow(
            lambda: source,
            source.viewer,
            region=self.desk.region,
            controller=Controller.from_config(self.desk.config),
            tz=tz,
        )
        self.review_window = window
        window.show()
        window.raise_()
        window.activateWindow()

    def _review_failed(self, exc: BaseException) -> None:
        self._review_pending = False
        self.review_button.setEnabled(True)
        self.review_error.set_state(theme.FAILURE, f"Review not opened: {describe_error(exc)}")
        self.review_error.show()

    def _close_review(self) -> None:
        window, self.review_window = self.review_window, None
        if window is not None and shiboken6.isValid(window):
            window.close()  # stops its workers
            shiboken6.delete(window)
