"""The only module that imports durable_rules: one host, one lock, a fresh session per evaluation.

The safe pattern of ENGINE-NOTES §1.1: one ``Host`` per process, every call under one lock, a fresh
sid per evaluation, exactly one ``assert_fact`` carrying the whole snapshot, actions that only
append their rule name to a collector keyed by sid (never touching ``c.s``), the state deleted in
``finally``, and ``state["exception"]`` checked. The host's background dispatch threads are not
started: we use neither timers nor queued actions, and a dispatcher thread could otherwise pick up
an action of ours outside the lock.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from durable import engine as durable_engine
from durable.engine import MessageNotHandledException

from pathway.conditions import FactValue
from pathway.errors import RuleEvaluationError
from rules.compile import MARKER_FIELD, SENTINEL_RULE, compile_pack, durable_rule_name, ruleset_name
from rules.schema import RulePack


class _QuietHost(durable_engine.Host):  # type: ignore[misc]
    """A durable_rules host without its self-re-arming dispatch and timer threads."""

    def _run(self) -> None:
        return None


class DurableEngine:
    """Evaluates snapshots against every registered pack; safe to share between threads."""

    def __init__(self, packs: Iterable[RulePack]) -> None:
        self._lock = threading.Lock()
        self._sequence = itertools.count()
        self._fired: dict[str, list[str]] = {}
        self._rule_ids: dict[str, dict[str, str]] = {}
        self._host = _QuietHost()
        definitions: dict[str, Any] = {}
        for pack in packs:
            name = ruleset_name(pack)
            compiled = compile_pack(pack)
            names = {durable_rule_name(item.id): item.id for item in pack.conditional_items()}
            self._rule_ids[name] = names
            for rule_name, definition in compiled.items():
                definition["run"] = self._action(rule_name)
            definitions[name] = compiled
        with self._lock:
            self._host.set_rulesets(definitions)

    def _action(self, rule_name: str) -> Callable[[Any], None]:
        def act(c: Any) -> None:  # read-only use of the closure: never write c.s
            self._fired[c.m.sid].append(rule_name)

        return act

    def fired_rule_ids(self, pack: RulePack, facts: Mapping[str, FactValue]) -> list[str]:
        """Ids of the rules and schedules of ``pack`` whose conditions hold for ``facts``."""
        ruleset = ruleset_name(pack)
        names = self._rule_ids.get(ruleset)
        if names is None:
            raise RuleEvaluationError(f"pack {pack.id} version {pack.version} is not loaded in the engine")
        sid = f"ev-{next(self._sequence)}"
        message = {**facts, MARKER_FIELD: 1, "sid": sid}
        with self._lock:
            self._fired[sid] = []
            state_created = True
            try:
                try:
                    state = self._host.assert_fact(ruleset, message)
                except MessageNotHandledException:
                    state_created = False  # deleting a never-created state corrupts the host
                    raise RuleEvaluationError(
                        f"pack {pack.id} {pack.version}: the snapshot was not handled (sentinel rule missing)"
                    ) from None
                except Exception as error:  # the C core reports failures as plain exceptions
                    raise RuleEvaluationError(f"pack {pack.id} {pack.version}: {error}") from error
                if isinstance(state, dict) and state.get("exception"):
                    raise RuleEvaluationError(f"pack {pack.id} {pack.version}: {state['exception']}")
                fired = self._fired[sid]
                if SENTINEL_RULE not in fired:
                    raise RuleEvaluationError(f"pack {pack.id} {pack.version}: actions did not complete")
                return [names[name] for name in fired if name != SENTINEL_RULE]
            finally:
                self._fired.pop(sid, None)
                if state_created:
                    with contextlib.suppress(Exception):
                        self._host.delete_state(ruleset, sid)
