# Written for drover's compatibility suite (scripts/compat): makes
# ansible-playbook report task starts and per-host results as JSON lines in
# the shape of `drover apply --output json`, so that one reader compares both.
"""Callback plugin: drover-shaped JSON events, one per line, to $COMPAT_EVENTS."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: compat_events
    type: aggregate
    short_description: drover-shaped JSON events for the compatibility suite
    description: Writes task starts and per-host results to the file named by COMPAT_EVENTS.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "compat_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._out = open(os.environ["COMPAT_EVENTS"], "a", encoding="utf-8")
        self._task_id = 0

    def _emit(self, event):
        self._out.write(json.dumps(event, default=str) + "\n")
        self._out.flush()

    def _start(self, task, handler):
        self._task_id += 1
        self._emit({"event": "task_start", "task_id": self._task_id,
                    "task": task.get_name(), "handler": handler})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._start(task, True)

    def _result(self, result, status, ignored=False):
        res = result._result if isinstance(result._result, dict) else {}
        msg = res.get("msg")
        if msg is None and status == "failed":
            msg = res.get("stderr") or res.get("exception")
        self._emit({"event": "host_result", "task_id": self._task_id,
                    "host": result._host.get_name(), "status": status,
                    "ignored": bool(ignored), "msg": None if msg is None else str(msg)[:500]})

    def v2_runner_on_ok(self, result):
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed", ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")
