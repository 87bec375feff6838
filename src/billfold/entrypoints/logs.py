"""Logging for the processes billfold runs (``serve``, ``worker``, ``dev``), at ``BILLFOLD_LOG_LEVEL``."""

from __future__ import annotations

import logging

from billfold.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(settings: Settings) -> None:
    """Billfold's own loggers at the configured level; lines go to stderr unless the host
    application (or a test runner) has set up logging already."""
    logging.getLogger("billfold").setLevel(settings.log_level.upper())
    if not logging.getLogger().handlers:
        logging.basicConfig(format=FORMAT, level=logging.WARNING)
