"""unitehub reference application: the service the unitehub.platform roles deploy.

Served by uvicorn, measured with prometheus_client, and traced with the
OpenTelemetry SDK when APM exports; psycopg 3 and redis-py when they are installed.
Run it with ``python3 -m unitehub_app``; configuration comes from the environment
(see ``config.py`` and the README).
"""

__version__ = "1.1.0"
