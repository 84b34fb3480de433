# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unitehub platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: deploy_events
author: unitehub platform team (@unitehub)
type: notification
short_description: Time blue-green deploy phases and report each deploy as an event
version_added: 0.1.0
description:
  - Watches the tasks of each deploy phase (C(preflight), C(image), C(start), C(health_gate),
    C(switch), C(stability), C(drain), C(record)) and times each phase from the start of its
    first task to the end of its last. A task belongs to a phase through the variable
    C(deploy_phase), usually set as C(vars) of the C(include_tasks) or block around it, or
    through a tag C(phase:<name>).
  - A module that runs several phases in one call (M(unitehub.platform.app_release) runs image, start
    and health gate) returns the seconds of each as C(phases); when the task's own phase is the
    first of them, each is reported as its own phase, laid out backwards from the task's end;
    later tasks of that phase then extend the last of them.
  - At the end of a playbook that ran at least one phase task, writes one event to the audit
    log, C({event, outcome, phases, version, previous_version, slot, from_slot, duration_s,
    reason, run_id, app, user, source=callback}). C(event) is C(deploy) or C(rollback), from
    the play variable C(deploy_event_kind) or else the playbook file name; C(outcome) is
    C(failed) when any host failed or was unreachable.
  - Slot, versions, app and run id come from what the run produced last of a C(deploy),
    C(rollback) or C(failure) event appended by M(unitehub.platform.deploy_state) (its
    C(audit_event) return) and the fact C(unitehub_deploy_event) (keys C(slot),
    C(from_slot), C(from_version), C(to_version), C(app), C(run_id)).
  - When O(otlp_endpoint) is set, sends the deploy as OTLP/HTTP JSON spans (one parent span,
    one child per phase) to C(<otlp_endpoint>/v1/traces). When O(datadog_api_key) is set,
    posts a Datadog event. A collector or API that does not answer gives a warning; it never
    fails the playbook.
  - Nothing is written or sent in check mode.
requirements:
  - Enable it with C(callbacks_enabled = unitehub.platform.deploy_events) in C(ansible.cfg)
    or C(ANSIBLE_CALLBACKS_ENABLED).
options:
  audit_log:
    description:
      - The JSON-lines audit log on the controller; an empty value disables the audit line.
      - When the controller is also the load balancer and the deploy role audits to the same
        file, both lines are kept; the callback's carries C(source=callback) and the phases.
    type: str
    default: /var/log/unitehub/deploy-audit.jsonl
    env:
      - name: UNITEHUB_DEPLOY_AUDIT_LOG
    ini:
      - section: callback_deploy_events
        key: audit_log
  otlp_endpoint:
    description:
      - Base URL of an OpenTelemetry collector's OTLP/HTTP receiver, for example
        C(http://127.0.0.1:4318). C(/v1/traces) is appended unless already there.
    type: str
    env:
      - name: UNITEHUB_OTLP_ENDPOINT
    ini:
      - section: callback_deploy_events
        key: otlp_endpoint
  otlp_timeout:
    description: Seconds to wait for the collector or the Datadog API.
    type: float
    default: 3
    env:
      - name: UNITEHUB_OTLP_TIMEOUT
    ini:
      - section: callback_deploy_events
        key: otlp_timeout
  service_name:
    description: The C(service.name) of the spans and the C(service) tag of the Datadog event.
    type: str
    default: unitehub-deploy
    env:
      - name: UNITEHUB_DEPLOY_SERVICE_NAME
    ini:
      - section: callback_deploy_events
        key: service_name
  datadog_api_key:
    description:
      - Datadog API key. When set, each deploy is posted as a Datadog event. Never displayed
        or logged.
    type: str
    env:
      - name: DD_API_KEY
    ini:
      - section: callback_deploy_events
        key: datadog_api_key
  datadog_site:
    description: The Datadog site; events go to C(https://api.<datadog_site>/api/v1/events).
    type: str
    default: datadoghq.com
    env:
      - name: DD_SITE
    ini:
      - section: callback_deploy_events
        key: datadog_site
"""

import getpass
import json
import os
import re
import time

from ansible import context
from ansible.module_utils.urls import open_url
from ansible.plugins.callback import CallbackBase

from ansible_collections.unitehub.platform.plugins.module_utils.deploy_audit import AuditError, append_audit

PHASES = ("preflight", "image", "start", "health_gate", "switch", "stability", "drain", "record")
EVENT_KINDS = ("deploy", "rollback")
EVENT_FACT = "unitehub_deploy_event"
PHASE_VAR = "deploy_phase"
# A module result's own per-phase seconds (unitehub.platform.app_release).
STEPS_KEY = "phases"
HARVESTED_EVENTS = ("deploy", "rollback", "failure")
_PHASE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_SITE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+")
OTLP_SPAN_KIND_INTERNAL = 1
OTLP_STATUS_OK = 1
OTLP_STATUS_ERROR = 2


# ------------------------------------------------------------------ pure parts

def phase_of(task_vars=None, tags=None):
    """The phase a task belongs to: its ``deploy_phase`` variable (a literal phase
    name, inherited from the include or block around it), else a ``phase:<name>``
    tag, else None."""
    value = (task_vars or {}).get(PHASE_VAR)
    if isinstance(value, str) and _PHASE_NAME.fullmatch(value):
        return str(value)
    for tag in tags or ():
        tag = str(tag)
        if tag.startswith("phase:") and _PHASE_NAME.fullmatch(tag[6:]):
            return tag[6:]
    return None


def module_steps(phase, steps):
    """The deploy phases a module's result times itself, ``[(phase, seconds), ...]`` in the order it
    ran them, when the task's own phase is the first of them (app_release in the image phase
    returns ``phases: {image, start, health_gate}``); else None, and the task is timed as a whole."""
    if not isinstance(steps, dict) or not steps:
        return None
    known = [(str(name), float(seconds)) for name, seconds in steps.items()
             if name in PHASES and isinstance(seconds, (int, float)) and seconds >= 0]
    if not known or known[0][0] != phase:
        return None
    return known


def info_from_audit_event(event):
    """Deploy facts from a ``deploy_state`` ``audit_event`` return, or None for
    events that do not describe the run's target (switch, auto_revert, ...)."""
    if not isinstance(event, dict) or event.get("event") not in HARVESTED_EVENTS:
        return None
    return {"slot": event.get("slot"), "from_slot": event.get("from_slot"), "to_version": event.get("version"),
            "from_version": event.get("previous_version"), "app": event.get("app"), "run_id": event.get("run_id")}


def event_kind(play_value=None, playbook_path=None):
    """``deploy`` or ``rollback``: the play variable wins, then the playbook's file name."""
    if isinstance(play_value, str) and play_value in EVENT_KINDS:
        return play_value
    name = os.path.splitext(os.path.basename(playbook_path or ""))[0]
    return name if name in EVENT_KINDS else "deploy"


class PhaseTimer:
    """First start to last end of each phase, on a monotonic clock, with the
    wall-clock times the spans need derived from one anchor."""

    def __init__(self, wall_ns=None, mono_ns=None):
        self.wall0 = time.time_ns() if wall_ns is None else wall_ns
        self.mono0 = time.monotonic_ns() if mono_ns is None else mono_ns
        self.phases = {}

    def start(self, name, at_ns=None):
        at_ns = time.monotonic_ns() if at_ns is None else at_ns
        if name not in self.phases:
            self.phases[name] = [at_ns, at_ns]

    def end(self, name, at_ns=None):
        at_ns = time.monotonic_ns() if at_ns is None else at_ns
        if name in self.phases:
            self.phases[name][1] = max(self.phases[name][1], at_ns)

    def carve(self, steps, at_ns=None):
        """Phases a module timed itself, ending now (or ``at_ns``): each step's span is laid out
        backwards from the end. The first one also keeps what went before it in the task (the
        module's start-up), since its phase began with the task."""
        end = time.monotonic_ns() if at_ns is None else at_ns
        spans = []
        for name, seconds in reversed(steps):
            begin = end - int(seconds * 1e9)
            spans.append((name, begin, end))
            end = begin
        for name, begin, finish in reversed(spans):
            self.start(name, begin)
            self.end(name, finish)

    def _ordered(self):
        known = [name for name in PHASES if name in self.phases]
        return known + sorted((name for name in self.phases if name not in PHASES), key=lambda n: self.phases[n][0])

    def durations(self):
        """Seconds per phase, in deploy order."""
        return {name: round((self.phases[name][1] - self.phases[name][0]) / 1e9, 3) for name in self._ordered()}

    def wall(self, mono_ns):
        return self.wall0 + (mono_ns - self.mono0)

    def spans(self):
        """(name, wall start ns, wall end ns) per phase, in deploy order."""
        return [(name, self.wall(self.phases[name][0]), self.wall(self.phases[name][1])) for name in self._ordered()]


def build_event(kind, outcome, phases, info, duration_s, reason=None, user=None):
    """The audit event (the fields of module_utils.deploy_audit.AUDIT_FIELDS)."""
    info = info or {}

    def text(key):
        value = info.get(key)
        return None if value in (None, "") else str(value)

    return {
        "event": kind, "app": text("app"), "slot": text("slot"), "from_slot": text("from_slot"),
        "version": text("to_version"), "previous_version": text("from_version"), "outcome": outcome,
        "reason": reason if outcome == "failed" else None, "run_id": text("run_id"), "user": user,
        "duration_s": round(duration_s, 3), "phases": phases, "source": "callback",
    }


def _attributes(pairs):
    out = []
    for key, value in pairs:
        if value is None:
            continue
        if isinstance(value, bool):
            out.append({"key": key, "value": {"boolValue": value}})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        elif isinstance(value, float):
            out.append({"key": key, "value": {"doubleValue": value}})
        else:
            out.append({"key": key, "value": {"stringValue": str(value)}})
    return out


def build_otlp_payload(event, phase_spans, start_ns, end_ns, service_name, failed_phases=(), ids=None):
    """An OTLP/HTTP JSON ``ExportTraceServiceRequest``: one parent span for the
    deploy, one child span per phase. ``ids`` (trace id, then span ids) may be
    given for reproducible output; random otherwise."""
    ids = iter(ids) if ids is not None else None

    def new_id(size):
        return next(ids) if ids is not None else os.urandom(size).hex()

    trace_id, parent_id = new_id(16), new_id(8)
    failed = event["outcome"] == "failed"
    parent = {
        "traceId": trace_id, "spanId": parent_id, "name": "%s %s" % (event["event"], event.get("app") or "app"),
        "kind": OTLP_SPAN_KIND_INTERNAL, "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
        "attributes": _attributes([
            ("deploy.event", event["event"]), ("deploy.outcome", event["outcome"]), ("deploy.app", event.get("app")),
            ("deploy.slot", event.get("slot")), ("deploy.from_slot", event.get("from_slot")),
            ("deploy.to_version", event.get("version")), ("deploy.from_version", event.get("previous_version")),
            ("deploy.run_id", event.get("run_id")), ("deploy.user", event.get("user")),
            ("deploy.duration_s", float(event["duration_s"])),
        ]),
        "status": {"code": OTLP_STATUS_ERROR, "message": event.get("reason") or "failed"} if failed
        else {"code": OTLP_STATUS_OK},
    }
    spans = [parent]
    for name, begin, finish in phase_spans:
        span = {
            "traceId": trace_id, "spanId": new_id(8), "parentSpanId": parent_id, "name": "phase %s" % name,
            "kind": OTLP_SPAN_KIND_INTERNAL, "startTimeUnixNano": str(begin), "endTimeUnixNano": str(finish),
            "attributes": _attributes([("deploy.phase", name), ("deploy.phase.duration_s", (finish - begin) / 1e9)]),
            "status": {"code": OTLP_STATUS_ERROR} if name in failed_phases else {"code": OTLP_STATUS_OK},
        }
        spans.append(span)
    return {"resourceSpans": [{
        "resource": {"attributes": _attributes([("service.name", service_name)])},
        "scopeSpans": [{"scope": {"name": "unitehub.platform.deploy_events"}, "spans": spans}],
    }]}


def otlp_traces_url(endpoint):
    """``<endpoint>/v1/traces``; ValueError naming a value that is not an http(s) URL."""
    if not re.match(r"https?://[^/\s]+", endpoint or ""):
        raise ValueError("otlp_endpoint %r is not an http(s) URL such as http://127.0.0.1:4318" % (endpoint,))
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def build_datadog_request(event, api_key, site="datadoghq.com", service_name="unitehub-deploy", now=None):
    """``(url, headers, body)`` of the Datadog v1 event for a deploy event."""
    if not _SITE.fullmatch(site or ""):
        raise ValueError("datadog_site %r is not a Datadog site such as datadoghq.com or datadoghq.eu" % (site,))
    ok = event["outcome"] == "success"
    app = event.get("app") or "app"
    target = " ".join(part for part in (event.get("version"), event.get("slot") and "to %s" % event["slot"]) if part)
    title = "%s %s%s: %s" % (app, event["event"], " " + target if target else "", event["outcome"])
    lines = ["%s of %s %s." % (event["event"].capitalize(), app, "succeeded" if ok else "failed")]
    if event.get("previous_version") or event.get("from_slot"):
        lines.append("From %s on %s." % (event.get("previous_version") or "?", event.get("from_slot") or "?"))
    if event.get("phases"):
        lines.append("Phases: " + ", ".join("%s %.1fs" % item for item in event["phases"].items()) + ".")
    lines.append("Duration %.1fs." % event["duration_s"])
    if not ok and event.get("reason"):
        lines.append("Reason: %s" % event["reason"])
    tags = ["service:%s" % service_name, "app:%s" % app, "event:%s" % event["event"], "outcome:%s" % event["outcome"]]
    tags += ["%s:%s" % (key, event[field]) for key, field in (("slot", "slot"), ("version", "version"))
             if event.get(field)]
    body = {
        "title": title, "text": "\n".join(lines), "alert_type": "success" if ok else "error",
        "source_type_name": "ansible", "aggregation_key": "%s-%s" % (service_name, app), "tags": tags,
        "date_happened": int(time.time() if now is None else now),
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json", "DD-API-KEY": api_key}
    return "https://api.%s/api/v1/events" % site, headers, body


def post_json(url, body, headers=None, timeout=3.0):
    """POST ``body`` as JSON; returns the HTTP status. Raises on any failure."""
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    response = open_url(url, data=json.dumps(body).encode("utf-8"), headers=all_headers, method="POST",
                        timeout=timeout, follow_redirects="none")
    status = response.getcode()
    response.read()
    return status


# -------------------------------------------------------------------- callback

class CallbackModule(CallbackBase):
    """Deploy phase timing, audit line, OTLP trace and Datadog event."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "unitehub.platform.deploy_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self.timer = PhaseTimer()
        self.playbook_path = None
        self.kind_var = None
        self.app_var = None
        self.info = {}
        self.reason = None
        self._phase_by_task = {}
        # phase -> the last step a module timed in it (see _finished)
        self._carried = {}
        self.failed_phases = set()

    # ---- collecting

    def v2_playbook_on_start(self, playbook):
        self.timer = PhaseTimer()
        self._carried = {}
        self.playbook_path = getattr(playbook, "_file_name", None)

    def v2_playbook_on_play_start(self, play):
        play_vars = play.get_vars() or {}
        for attr, key in (("kind_var", "deploy_event_kind"), ("app_var", "app_name")):
            value = play_vars.get(key)
            if isinstance(value, str) and "{" not in value:
                setattr(self, attr, str(value))

    def _phase(self, task):
        # Task.get_vars() walks every parent block and include; once per task is
        # plenty (its start, its results and each loop item share the answer).
        key = task._uuid
        if key not in self._phase_by_task:
            try:
                task_vars = task.get_vars()
            except Exception:  # an odd task must never break the run's reporting
                task_vars = {}
            self._phase_by_task[key] = phase_of(task_vars, task.tags)
        return self._phase_by_task[key]

    def v2_playbook_on_task_start(self, task, is_conditional):
        phase = self._phase(task)
        if phase:
            self.timer.start(phase)

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _finished(self, result):
        phase = self._phase(result._task)
        if phase:
            steps = module_steps(phase, result._result.get(STEPS_KEY))
            if steps:
                self.timer.carve(steps)
                # The tasks that follow the call in the same phase (registering its result) come
                # after its last step: they extend that one, not the first.
                self._carried[phase] = steps[-1][0]
            else:
                self.timer.end(self._carried.get(phase, phase))
        return phase

    def v2_runner_on_ok(self, result):
        self._finished(result)
        harvested = info_from_audit_event(result._result.get("audit_event"))
        if harvested:
            self.info.update({key: value for key, value in harvested.items() if value not in (None, "")})
        facts = result._result.get("ansible_facts") or {}
        if isinstance(facts.get(EVENT_FACT), dict):
            self.info.update(facts[EVENT_FACT])

    def v2_runner_on_failed(self, result, ignore_errors=False):
        phase = self._finished(result)
        if ignore_errors:
            return
        if phase:
            self.failed_phases.add(phase)
        message = str(result._result.get("msg") or "failed").strip().splitlines()[0][:300]
        self.reason = "task '%s' failed on %s: %s" % (result._task.get_name(), result._host.get_name(), message)

    def v2_runner_on_skipped(self, result):
        self._finished(result)

    def v2_runner_on_unreachable(self, result):
        phase = self._finished(result)
        if phase:
            self.failed_phases.add(phase)
        self.reason = "host %s was unreachable" % result._host.get_name()

    # ---- reporting

    def v2_playbook_on_stats(self, stats):
        phases = self.timer.durations()
        if not phases:
            return
        if context.CLIARGS.get("check"):
            self._display.vv("deploy_events: check mode, no deploy event written or sent")
            return
        end_mono = time.monotonic_ns()
        failed = any(stats.failures.get(host) or stats.dark.get(host) for host in stats.processed)
        info = dict(self.info)
        info.setdefault("app", self.app_var)
        kind = event_kind(self.kind_var, self.playbook_path)
        event = build_event(kind, "failed" if failed else "success", phases, info,
                            (end_mono - self.timer.mono0) / 1e9, self.reason, _user())
        self._write_audit(event)
        self._send_otlp(event, self.timer.wall0, self.timer.wall(end_mono))
        self._send_datadog(event)

    def _write_audit(self, event):
        path = self.get_option("audit_log")
        if not path:
            return
        try:
            append_audit(os.path.expanduser(path), event)
        except AuditError as exc:
            self._display.warning("deploy_events: the deploy event was not audited: %s" % exc)

    def _send_otlp(self, event, start_ns, end_ns):
        endpoint = self.get_option("otlp_endpoint")
        if not endpoint:
            return
        try:
            url = otlp_traces_url(endpoint)
            payload = build_otlp_payload(event, self.timer.spans(), start_ns, end_ns, self.get_option("service_name"),
                                         self.failed_phases)
            post_json(url, payload, timeout=float(self.get_option("otlp_timeout")))
        except Exception as exc:  # a telemetry failure must never fail the deploy
            self._display.warning("deploy_events: the deploy trace was not sent to %s: %s; the playbook result "
                                  "is unaffected" % (endpoint, exc))

    def _send_datadog(self, event):
        api_key = self.get_option("datadog_api_key")
        if not api_key:
            return
        try:
            url, headers, body = build_datadog_request(event, api_key, self.get_option("datadog_site"),
                                                       self.get_option("service_name"))
            post_json(url, body, headers=headers, timeout=float(self.get_option("otlp_timeout")))
        except Exception as exc:  # a telemetry failure must never fail the deploy
            self._display.warning("deploy_events: the Datadog event was not sent: %s"
                                  % str(exc).replace(api_key, "********"))


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
