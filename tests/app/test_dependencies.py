"""The tests run the app on the library versions its image holds."""

from __future__ import annotations

import os
import re

from .conftest import REPO_ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", re.MULTILINE)


def pins(path: str) -> dict:
    with open(os.path.join(REPO_ROOT, path), encoding="utf-8") as handle:
        return {re.sub(r"[-_.]+", "-", name).lower(): version for name, version in PIN.findall(handle.read())}


def test_every_image_library_is_pinned_and_hashed():
    path = os.path.join(REPO_ROOT, "roles/base_image/files/python-requirements.txt")
    with open(path, encoding="utf-8") as handle:
        entries = [e for e in re.split(r"\n(?=\S)", handle.read()) if e.strip() and not e.startswith("#")]
    assert entries and all("==" in e and "--hash=sha256:" in e for e in entries), entries


def test_the_dev_requirements_pin_the_image_versions():
    image = pins("roles/base_image/files/python-requirements.txt")
    dev = pins("requirements-dev.txt")
    shared = {name: version for name, version in dev.items() if name in image}
    assert {"uvicorn", "prometheus-client", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http",
            "opentelemetry-proto", "protobuf"} <= set(shared)
    assert shared == {name: image[name] for name in shared}
