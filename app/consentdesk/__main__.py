import sys

from consentdesk.cli import main

sys.exit(main())
