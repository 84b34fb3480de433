# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the unit, app and integration tests and by the benches.

- ``loopback``: a free port on 127.0.0.1, whether a port listens, a throwaway HTTP server.
- ``waiting``: ``wait_until``, the one bounded poll.
- ``otlp``: an OTLP/HTTP JSON receiver that keeps what it is sent.

Import them through the collection path, e.g.
``from ansible_collections.unitehub.platform.tests.support.waiting import wait_until``;
tests/conftest.py puts that path on ``sys.path``, a bench run as ``python bench/x.py``
inserts the checkout's ``collections/`` directory itself.
"""
