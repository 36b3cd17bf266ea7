"""``python -m weave_nb`` runs the ``weave`` command line."""

import sys

from .frontends.cli import main

sys.exit(main())
