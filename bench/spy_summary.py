"""Where a server's CPU goes, from py-spy's raw (collapsed) profiles (README, "The ratio to the floor").

    py-spy record -d 30 -r 67 --gil --nonblocking -f raw -o worker-PID.txt -p PID   # each worker
    python -m bench.spy_summary worker-*.txt

Prints two breakdowns of the samples: by layer (the innermost frame of a known package, or of our
own source tree, decides), and by step of a request (the innermost of our steps on the stack).
With ``--gil`` a sample is a thread holding the GIL: Python's work, not libpq's or other C code that
releases it. Samples whose innermost frame waits for PostgreSQL or in the event loop's ``select``
are counted apart (they appear only without ``--gil``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):\d+\)$")
OURS = ("api/", "pathway/", "rules/", "bench/", "scheduler/")
FRAMEWORK = "uvicorn / Starlette / anyio / asyncio"
LAYERS = [  # (in the file's path, layer): the first that matches
    ("sqlalchemy/sql/compiler", "SQLAlchemy: compiling"),
    ("sqlalchemy/orm", "SQLAlchemy: ORM"),
    ("sqlalchemy/engine", "SQLAlchemy: engine, execute, results"),
    ("sqlalchemy/", "SQLAlchemy: other"),
    ("sqlmodel/", "SQLAlchemy: other"),
    ("psycopg", "psycopg"),
    ("durable/", "durable_rules"),
    ("pydantic", "pydantic"),
    ("fastapi/", "FastAPI"),
    ("starlette/", FRAMEWORK),
    ("anyio/", FRAMEWORK),
    ("uvicorn/", FRAMEWORK),
    ("httptools", FRAMEWORK),
    ("h11/", FRAMEWORK),
    ("asyncio/", FRAMEWORK),
    ("concurrent/futures", FRAMEWORK),
    ("threading.py", FRAMEWORK),
    ("json/", "json"),
    ("logging/", "logging"),
]
STEPS = [  # (in the function's name, step): the innermost frame that matches decides
    ("Session.commit", "commit"),
    ("Evaluator.assess", "snapshot, rules and assessment"),
    ("Evaluator.snapshot", "snapshot, rules and assessment"),
    ("history_of", "history read"),
    ("history_rows", "history read"),
    ("sync_from_assessment", "task sync"),
    ("_store_assessment", "storing the assessment (and the outbox's previous tier)"),
    ("record_readings", "readings: parse, measure, insert"),
    ("record_encounter", "visits: parse, measure, insert"),
    ("daily_list", "team list"),
    ("remember_answer", "idempotency: lookup and kept answer"),
    ("answered_once", "idempotency: lookup and kept answer"),
    ("patient_for", "key, the patient's row lock and lookup, audit"),
    ("_current_key", "key, the patient's row lock and lookup, audit"),
    ("serialize_response", "answer: validation and JSON encoding"),
    ("jsonable_encoder", "answer: validation and JSON encoding"),
    ("request_body_to_args", "request body parse"),
    ("Request.json", "request body parse"),
    ("Request.body", "request body parse"),
    ("solve_dependencies", "FastAPI's dependencies (other)"),
    ("_session", "session open and close"),
    ("Logger.info", "access-log line"),
]
OUTSIDE = "HTTP server, routing, event loop, thread-pool hops (outside every step)"


def stacks(path: Path) -> Iterator[tuple[list[tuple[str, str]], int]]:
    """(frames from the root to the leaf as (function, file), samples) of each line."""
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = []
        for frame in stack.split(";"):
            match = FRAME.match(frame)
            frames.append((match["function"], match["file"]) if match else (frame, ""))
        yield frames, int(count)


def layer(frames: list[tuple[str, str]]) -> str:
    function, file = frames[-1]
    if file.startswith("psycopg") and function.endswith("wait"):
        return "(waiting for PostgreSQL)"
    if "selectors.py" in file:
        return "(event loop idle)"
    for _, file in reversed(frames):
        if file.startswith(OURS):
            return "our code: " + "/".join(
                file.split("/")[:2] if file.count("/") > 1 else file.split("/")[:1]
            )
        for key, name in LAYERS:
            if key in file:
                return name
    return "other (standard library, C)"


def step(frames: list[tuple[str, str]]) -> str:
    for function, _ in reversed(frames):
        for key, name in STEPS:
            if key in function:
                return name
    return OUTSIDE


def main(argv: list[str] | None = None) -> int:
    assert __doc__ is not None
    parser = argparse.ArgumentParser(prog="python -m bench.spy_summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path, help="py-spy record -f raw outputs")
    args = parser.parse_args(argv)
    layers: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    for path in args.profiles:
        for frames, count in stacks(path):
            layers[layer(frames)] += count
            steps[step(frames)] += count
    total = sum(layers.values())
    if not total:
        print("no samples")
        return 1
    print(f"{total:,} samples")
    for title, counts in (("by layer", layers), ("by step", steps)):
        print(f"\n{title}")
        for name, count in counts.most_common():
            print(f"{100 * count / total:5.1f} %  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
