"""``python3 -m unitehub_app``: serve until SIGTERM or SIGINT."""

import sys

from .server import main

if __name__ == "__main__":
    sys.exit(main())
