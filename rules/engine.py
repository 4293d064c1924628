"""The only module that imports durable_rules: one engine, one lock, a fresh session per evaluation.

It keeps the safe pattern of ENGINE-NOTES §1.1 — rulesets registered once at start under our own
names, every call under one lock, a fresh sid per evaluation, exactly one ``assert_fact`` carrying
the whole snapshot, the session's state deleted in ``finally`` — and drives durable_rules' C core
directly instead of through ``durable.engine.Host``:

- The fired rules are read from the core's action queue for the session (``start_action_for_state``
  / ``complete_and_start_action``): no Python action callbacks, so nothing can write ``c.s`` and no
  per-action state round trip is paid. This measured 1.5× faster than the Host path on the default
  pack (bench/rules.py), which is what brings the engine past 5,000 evaluations/s.
- No ``Host`` means none of its self-re-arming dispatch and timer threads, which would otherwise run
  queued actions of ours outside the lock.
- The pinned version (durable-rules==2.0.28) is the last release; the C API used here is the one
  ``durable/engine.py`` itself calls.

Two hazards are closed in ``rules/compile.py`` (a sentinel rule makes every evaluation "handled":
an unhandled message leaks its session, and deleting it crashes the next call) and here (only the
facts the pack reads are sent).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterable, Mapping

import durable_rules_engine as durable_core

from pathway.clinical.conditions import FactValue, referenced_facts
from pathway.clinical.errors import RuleEvaluationError
from rules.compile import MARKER_FIELD, SENTINEL_RULE, compile_pack, durable_rule_name, ruleset_name
from rules.schema import RulePack

_HANDLED = 0  # durable_rules' assert result codes: 1 not handled, 2 already observed


def _rule_name(action: str) -> str:
    """The rule name of a queued action ``{"<rule name>": {matched fact}}``.

    Rule names are ``r<n>`` (see ``rules/compile.py``), so the key ends at the next quote;
    reading it this way skips decoding the whole matched snapshot once per fired rule.
    """
    if action.startswith('{"'):
        end = action.find('"', 2)
        if end > 2:
            return action[2:end]
    name = next(iter(json.loads(action)))
    assert isinstance(name, str)
    return name


class _CompiledPack:
    def __init__(self, pack: RulePack) -> None:
        self.name = ruleset_name(pack)
        self.rule_ids = {durable_rule_name(i): item.id for i, item in enumerate(pack.conditional_items())}
        self.facts_read = frozenset(
            name for item in pack.conditional_items() for name in referenced_facts(item.when)
        )
        definition = json.dumps(compile_pack(pack), ensure_ascii=False)
        self.handle = durable_core.create_ruleset(self.name, definition)


class DurableEngine:
    """Evaluates snapshots against every registered pack; safe to share between threads.

    Build one per process, with every pack version that can be asked for (durable_rules cannot
    unload a ruleset: a pack change means a restart).
    """

    def __init__(self, packs: Iterable[RulePack]) -> None:
        self._lock = threading.Lock()
        self._sequence = itertools.count()
        self._live: set[str] = set()
        self._packs: dict[str, _CompiledPack] = {}
        with self._lock:
            for pack in packs:
                compiled = _CompiledPack(pack)
                if compiled.name in self._packs:
                    raise RuleEvaluationError(f"pack {pack.id} version {pack.version} is registered twice")
                self._packs[compiled.name] = compiled

    def live_sessions(self) -> int:
        """Sessions currently inside an evaluation (0 between calls: nothing is left behind)."""
        return len(self._live)

    def fired_rule_ids(self, pack: RulePack, facts: Mapping[str, FactValue]) -> list[str]:
        """Ids of the rules and schedules of ``pack`` whose conditions hold for ``facts`` (each once)."""
        compiled = self._packs.get(ruleset_name(pack))
        if compiled is None:
            raise RuleEvaluationError(f"pack {pack.id} version {pack.version} is not loaded in the engine")
        sid = f"ev-{next(self._sequence)}"
        message = {name: value for name, value in facts.items() if name in compiled.facts_read}
        message[MARKER_FIELD] = 1
        message["sid"] = sid
        payload = json.dumps(message, ensure_ascii=False)
        with self._lock:
            fired = self._evaluate(compiled, sid, payload, pack)
        if SENTINEL_RULE not in fired:
            raise RuleEvaluationError(f"pack {pack.id} {pack.version}: the evaluation did not complete")
        return [compiled.rule_ids[name] for name in dict.fromkeys(fired) if name != SENTINEL_RULE]

    def _evaluate(self, compiled: _CompiledPack, sid: str, payload: str, pack: RulePack) -> list[str]:
        """Assert the snapshot and drain the session's actions; always delete the session."""
        handle = compiled.handle
        try:
            result = durable_core.assert_fact(handle, payload)
        except Exception as error:  # the C core reports failures as plain exceptions
            raise RuleEvaluationError(f"pack {pack.id} {pack.version}: {error!r}") from error
        if result[0] != _HANDLED:
            # Nothing was created for this sid: deleting it would corrupt the core.
            raise RuleEvaluationError(
                f"pack {pack.id} {pack.version}: snapshot not handled (code {result[0]})"
            )
        state_handle = result[1]
        self._live.add(sid)
        fired: list[str] = []
        action_open = False
        try:
            started = durable_core.start_action_for_state(handle, state_handle)
            action_open = bool(started)
            pending = started[1] if started else None
            while pending:
                fired.append(_rule_name(pending))
                pending = durable_core.complete_and_start_action(handle, state_handle)
                action_open = bool(pending)
            return fired
        except Exception as error:
            if action_open:
                durable_core.abandon_action(handle, state_handle)
            raise RuleEvaluationError(f"pack {pack.id} {pack.version}: {error!r}") from error
        finally:
            self._live.discard(sid)
            try:
                durable_core.delete_state(handle, sid)
            except Exception as error:
                raise RuleEvaluationError(
                    f"pack {pack.id} {pack.version}: state not deleted: {error!r}"
                ) from error
