"""OTLP protobuf for a batch of spans: the SDK's encoding, one span shape at a time.

The SDK's encoder (``encode_spans``) builds every span's protobuf message from nested
sub-messages (each attribute, its value, the status), and building nested messages is the
slow part of the protobuf runtime from Python: about 20 us a span here, most of what an
exported span costs. The app's server spans come in a handful of shapes, one per method,
route and status (name, kind, attributes, status), and differ only in ids, trace state,
parent, flags and times. So :class:`SpanEncoder` has the SDK's encoder encode each shape
once, and every span of that shape is a copy of it, made by the protobuf runtime in C, with
those fields set: about 4 us a span, finding its shape included. The bytes are the SDK's (protobuf writes fields in
field-number order, however they were set); tests/app/test_apm.py compares them.

A batch with anything else (events, links, dropped counts, more than one resource or
scope, an attribute value that cannot be a dict key) goes through ``encode_spans`` whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import SpanFlags
from opentelemetry.sdk.trace import ReadableSpan

# The fields the SDK's encoder fills from a span's context, parent and times; a shape has none of them.
PER_SPAN_FIELDS = ("trace_id", "span_id", "trace_state", "parent_span_id", "flags",
                   "start_time_unix_nano", "end_time_unix_nano")
LOCAL_PARENT = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
REMOTE_PARENT = LOCAL_PARENT | SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
MAX_SHAPES = 1024  # beyond this many shapes a new one is encoded for its span only, not kept


def shape_key(span: ReadableSpan):
    """What a span shares with every span of its shape, or None if it is not a plain span."""
    if (span.events or span.links or span.dropped_attributes or span.dropped_events or span.dropped_links
            or span.start_time is None or span.end_time is None):
        return None
    status = span.status
    return span.name, span.kind, tuple(span.attributes.items()), status.status_code, status.description


class SpanEncoder:
    """``encode(spans)`` gives the bytes of ``encode_spans(spans).SerializePartialToString()``."""

    def __init__(self):
        self._shapes: dict = {}
        self._envelope = (None, None)  # (resource and scope, their request without spans), the last ones seen

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        if not spans:
            return encode_spans(spans).SerializePartialToString()
        first = spans[0]
        resource, scope = first.resource, first.instrumentation_scope
        shapes = []
        for span in spans:
            same_group = span.resource is resource and (span.instrumentation_scope is scope
                                                        or span.instrumentation_scope == scope)
            key = shape_key(span) if same_group else None
            try:
                shape = None if key is None else self._shapes.get(key)
            except TypeError:  # an attribute value that is not hashable, such as a list
                key = None
            if key is None:
                return encode_spans(spans).SerializePartialToString()
            shapes.append(shape if shape is not None else self._shape(span, key))

        request = ExportTraceServiceRequest()
        request.CopyFrom(self._envelope_for(first))
        out = request.resource_spans[0].scope_spans[0].spans
        for span, shape in zip(spans, shapes):
            context, parent = span.context, span.parent
            encoded = out.add()
            encoded.CopyFrom(shape)
            encoded.trace_id = context.trace_id.to_bytes(16, "big")
            encoded.span_id = context.span_id.to_bytes(8, "big")
            if context.trace_state:
                encoded.trace_state = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
            if parent is not None:
                encoded.parent_span_id = parent.span_id.to_bytes(8, "big")
            encoded.flags = REMOTE_PARENT if parent is not None and parent.is_remote else LOCAL_PARENT
            encoded.start_time_unix_nano = span.start_time
            encoded.end_time_unix_nano = span.end_time
        return request.SerializePartialToString()

    def _shape(self, span: ReadableSpan, key):
        """The SDK's encoding of ``span`` without its per-span fields, kept for its shape."""
        shape = encode_spans([span]).resource_spans[0].scope_spans[0].spans[0]
        for field in PER_SPAN_FIELDS:
            shape.ClearField(field)
        if len(self._shapes) < MAX_SHAPES:
            self._shapes[key] = shape
        return shape

    def _envelope_for(self, span: ReadableSpan) -> ExportTraceServiceRequest:
        key = (span.resource, span.instrumentation_scope)
        cached_key, envelope = self._envelope
        if key != cached_key:
            envelope = encode_spans([span])
            del envelope.resource_spans[0].scope_spans[0].spans[:]
            self._envelope = key, envelope
        return envelope
