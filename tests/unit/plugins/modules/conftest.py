"""Shared set-up for module tests."""

import pytest
from ansible.module_utils import _internal


@pytest.fixture(autouse=True)
def module_process(monkeypatch):
    """A module process is not the controller. Once any test imported controller
    code (filters, callbacks), ansible would print module warnings instead of
    returning them; keep them in the result as they are in a real module run."""
    monkeypatch.setattr(_internal, "is_controller", False)
