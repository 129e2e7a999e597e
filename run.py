"""Simulacra's command line from a checkout: ``python run.py ...`` does what the installed ``simulacra`` command does.

The commands live in `simulacra.cli` (``python run.py --help`` lists them).
"""

import sys

from simulacra.cli import main

if __name__ == "__main__":
    sys.exit(main())
