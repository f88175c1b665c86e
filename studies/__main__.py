"""Entry point of ``python -m studies`` (guarded: joblib workers re-import this module)."""

import sys

from studies.cli import main

if __name__ == "__main__":
    sys.exit(main())
