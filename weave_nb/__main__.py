"""``python -m weave_nb`` runs the ``weave`` command line."""

import sys

from .cli import main

sys.exit(main())
