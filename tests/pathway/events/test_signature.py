"""The signature a receiver checks: the README's verification example accepts what the scheduler
signs and refuses a changed body, another secret or an old timestamp; the backoff doubles to its cap."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pathway.events.delivery import DeliveryPolicy, signature, verify

README = Path(__file__).parents[3] / "README.md"
SECRET = "at-least-16-characters"


def _readme_verifier() -> Any:
    section = README.read_text(encoding="utf-8").split("## Events out: webhooks", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, Any] = {}
    exec(code.group(1), namespace)  # the documentation's own code
    return namespace["verified"]


def test_the_readme_example_verifies_what_is_signed_and_nothing_else() -> None:
    verified = _readme_verifier()
    body = b'{"id":1,"kind":"crisis","patient_id":7,"tier":"red"}'
    now = str(int(time.time()))

    def headers(timestamp: str, signed: str) -> dict[str, str]:
        return {"X-Pathway-Timestamp": timestamp, "X-Pathway-Signature": signed}

    assert verified(SECRET, headers(now, signature(SECRET, now, body)), body)
    assert not verified(SECRET, headers(now, signature(SECRET, now, body)), body.replace(b"red", b"blue"))
    assert not verified(SECRET, headers(now, signature("another-secret-entirely", now, body)), body)
    old = str(int(time.time()) - 600)
    assert not verified(SECRET, headers(old, signature(SECRET, old, body)), body)
    assert verify(SECRET, now, body, signature(SECRET, now, body), time.time())
    assert not verify(SECRET, old, body, signature(SECRET, old, body), time.time())


def test_the_backoff_doubles_from_the_base_to_the_cap() -> None:
    policy = DeliveryPolicy(backoff_base_seconds=5, backoff_cap_seconds=60)
    waits = [policy.backoff(n) for n in range(1, 7)]
    assert waits == [timedelta(seconds=s) for s in (5, 10, 20, 40, 60, 60)]
