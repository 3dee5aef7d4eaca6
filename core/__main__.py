"""``python -m core …``: the command line over the engine (see ``python -m core --help``)."""

import sys

from core.cli import main

sys.exit(main())
