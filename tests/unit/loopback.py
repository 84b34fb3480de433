# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``serve_http`` lives in tests/support/loopback.py, the home of the loopback helpers;
this name stays for the unit tests that still import it from here."""

from __future__ import annotations

from ansible_collections.unitehub.platform.tests.support.loopback import serve_http

__all__ = ["serve_http"]
