"""What every entry point starts from: the effective settings and the data folder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from consentdesk.platform.config import APP, Config


@dataclass
class Context:
    config: Config
    data_dir: Path

    @classmethod
    def load(cls, *, config_file: str | None = None, data_dir: str | None = None) -> Context:
        """Settings from the usual files (or *config_file*); the data folder from
        *data_dir*, ``CONSENTDESK_DATA_DIR`` or the user data folder.

        Raises :class:`~consentdesk.platform.config.ConfigError` for a bad file.
        """
        config = Config.load(user_file=Path(config_file) if config_file else None)
        chosen = data_dir or os.environ.get("CONSENTDESK_DATA_DIR")
        path = Path(chosen) if chosen else Path(platformdirs.user_data_dir(APP, appauthor=False))
        return cls(config=config, data_dir=path)

    @property
    def region(self) -> str:
        return str(self.config.get("general.region"))
