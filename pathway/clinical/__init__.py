"""The care pathway as values and functions (PATHWAY.md §1–§6): no SQL, no I/O, no wall clock but
``SystemClock``. It imports nothing of ours outside itself, and it is all that ``rules/`` may import."""
