"""``python -m initcore ...``: the same as the ``initcore`` command (:func:`initcore.cli.main`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
