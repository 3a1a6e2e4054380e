"""Frozen entry point: the same command line as the installed ``consentdesk``."""

import sys

from consentdesk.cli import main

if __name__ == "__main__":
    sys.exit(main())
