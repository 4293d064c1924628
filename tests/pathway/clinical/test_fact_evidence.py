"""Every snapshot fact says which readings it comes from (a referral returned waits for them)."""

from __future__ import annotations

from pathway.clinical.fact_evidence import FACT_READINGS, evidence_keys
from pathway.clinical.snapshot import FACT_TYPES


def test_every_fact_of_the_snapshot_names_the_readings_it_is_derived_from() -> None:
    assert set(FACT_READINGS) == set(FACT_TYPES)


def test_a_lipid_rule_waits_for_a_lipid_and_a_crisis_rule_for_a_bp() -> None:
    assert evidence_keys(["ldl_c", "tg"]) == {"reading:ldl_c", "reading:tg"}
    assert evidence_keys(["bp_crisis_confirmed"]) == {"reading:bp"}
    assert evidence_keys(["newest_complication_age_days", "unknown_fact"]) == set()
