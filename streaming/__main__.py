"""``python -m streaming`` is the ``streaming`` command."""

import sys

from streaming.cli import main

sys.exit(main())
