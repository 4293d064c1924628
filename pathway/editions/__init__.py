"""Editions of a rule pack side by side: the impact of a pack change on the stored patients
(``pathway packs impact``, ``POST /v1/packs/impact``), each patient evaluated under both editions
from the stored history, compared and counted per team and overall. Nothing is stored."""
