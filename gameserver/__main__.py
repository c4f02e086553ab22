"""``python -m gameserver``: same as the ``gameserver`` console script (:mod:`gameserver.cli`)."""

import sys

from gameserver.cli import main

sys.exit(main())
