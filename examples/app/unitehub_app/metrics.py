"""Counters, gauges and histograms rendered in the Prometheus text format (0.0.4).

Hand-written so the app needs nothing beyond the standard library. Each metric
has its own lock; rendering takes a consistent copy of each metric in turn.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels(names: Sequence[str], values: Sequence[str], extra: tuple = ()) -> str:
    pairs = list(zip(names, values, strict=True)) + list(extra)
    if not pairs:
        return ""
    return "{" + ",".join(f'{n}="{escape_label_value(str(v))}"' for n, v in pairs) + "}"


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()):
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict) -> tuple:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _header(self, exposed_name: str) -> list[str]:
        return [f"# HELP {exposed_name} {_escape_help(self.documentation)}", f"# TYPE {exposed_name} {self.kind}"]


class Counter(_Metric):
    """A monotonically increasing total. ``name`` must end in ``_total``."""

    kind = "counter"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()):
        if not name.endswith("_total"):
            raise ValueError(f"counter name {name!r} must end in _total")
        super().__init__(name, documentation, labelnames)
        self._values: dict[tuple, float] = {}
        if not self.labelnames:
            self._values[()] = 0

    def inc(self, amount: float = 1, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0)

    def render(self) -> list[str]:
        # Text format 0.0.4 declares a counter under its full name, _total included.
        lines = self._header(self.name)
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(self.labelnames, k)} {format_value(v)}" for k, v in items]
        return lines


class Gauge(_Metric):
    """A value that goes up and down."""

    kind = "gauge"

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()):
        super().__init__(name, documentation, labelnames)
        self._values: dict[tuple, float] = {}
        if not self.labelnames:
            self._values[()] = 0

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = value

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def dec(self, amount: float = 1, **labels: str) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0)

    def render(self) -> list[str]:
        lines = self._header(self.name)
        with self._lock:
            items = sorted(self._values.items())
        lines += [f"{self.name}{_labels(self.labelnames, k)} {format_value(v)}" for k, v in items]
        return lines


class CallbackGauge(_Metric):
    """A gauge whose samples are read from ``collect()`` at scrape time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        collect: Callable[[], Iterable[tuple[Sequence[str], float]]],
    ):
        super().__init__(name, documentation, labelnames)
        self._collect = collect

    def render(self) -> list[str]:
        lines = self._header(self.name)
        lines += [f"{self.name}{_labels(self.labelnames, k)} {format_value(v)}" for k, v in self._collect()]
        return lines


class Histogram(_Metric):
    """Observations counted in cumulative ``le`` buckets, with ``_sum`` and ``_count``."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ):
        if "le" in labelnames:
            raise ValueError("'le' is reserved for histogram buckets")
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError("histogram buckets must be distinct finite numbers")
        super().__init__(name, documentation, labelnames)
        self.bounds = tuple(bounds)
        # per label key: [bucket counts (non-cumulative, +Inf last), sum]
        self._values: dict[tuple, list] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        index = len(self.bounds)
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                index = i
                break
        with self._lock:
            entry = self._values.get(key)
            if entry is None:
                entry = self._values[key] = [[0] * (len(self.bounds) + 1), 0.0]
            entry[0][index] += 1
            entry[1] += value

    def count(self, **labels: str) -> int:
        with self._lock:
            entry = self._values.get(self._key(labels))
            return sum(entry[0]) if entry else 0

    def render(self) -> list[str]:
        lines = self._header(self.name)
        with self._lock:
            items = sorted((k, (list(v[0]), v[1])) for k, v in self._values.items())
        for key, (counts, total) in items:
            cumulative = 0
            for bound, n in zip((*self.bounds, math.inf), counts, strict=True):
                cumulative += n
                le = (("le", format_value(bound)),)
                lines.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {cumulative}")
            lines.append(f"{self.name}_sum{_labels(self.labelnames, key)} {format_value(total)}")
            lines.append(f"{self.name}_count{_labels(self.labelnames, key)} {cumulative}")
        return lines


class Registry:
    """An ordered set of metrics rendered together."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []
        self._names: set[str] = set()
        self._lock = threading.Lock()

    def register(self, metric: _Metric) -> _Metric:
        with self._lock:
            if metric.name in self._names:
                raise ValueError(f"metric {metric.name} is already registered")
            self._names.add(metric.name)
            self._metrics.append(metric)
        return metric

    def render(self) -> str:
        with self._lock:
            metrics = list(self._metrics)
        lines: list[str] = []
        for metric in metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
