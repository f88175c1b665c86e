"""Entry point of ``python -m acquisition`` (guarded: worker processes re-import this module)."""

import sys

from acquisition.cli import main

if __name__ == "__main__":
    sys.exit(main())
