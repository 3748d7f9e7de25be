"""``python -m model_registry.cli``: the same as ``modelctl``."""

import sys

from model_registry.cli.main import main

sys.exit(main())
