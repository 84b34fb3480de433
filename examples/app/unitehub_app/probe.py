"""``python3 -m unitehub_app.probe [path]``: exit 0 when the local app answers 200.

Used by the image's HEALTHCHECK. It asks the address the app listens on
(HOST, PORT), using loopback when HOST is a wildcard address.
"""

from __future__ import annotations

import http.client
import os
import sys


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/api/health/live"
    host = os.environ.get("HOST", "").strip() or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    port = int(os.environ.get("PORT", "").strip() or "3000")
    conn = http.client.HTTPConnection(host, port, timeout=3)
    try:
        conn.request("GET", path, headers={"User-Agent": "unitehub-app-probe"})
        status = conn.getresponse().status
    except OSError as exc:
        print(f"probe: {host}:{port}{path}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
