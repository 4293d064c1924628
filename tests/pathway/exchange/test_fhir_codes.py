"""The read-out's codes are the ones the ingest side reads back: every reading kind's LOINC code
maps to that kind, every canonical unit's UCUM code to that unit."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from pathway.clinical.vocabulary import ReadingKind
from pathway.exchange import fhir_search
from pathway.exchange.fhir_resources import LOINC_OF_KIND, UCUM_OF_UNIT
from pathway.exchange.readout import KIND_OF_CODE
from pathway.ingest.fhir import UCUM_UNITS
from rules.registry import DEFAULT_PACK_ID, PackRegistry

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("kind", list(ReadingKind))
def test_each_kind_is_read_out_under_a_code_the_ingest_maps_back_to_it(kind: ReadingKind) -> None:
    assert KIND_OF_CODE[LOINC_OF_KIND[kind]] is kind


def test_each_canonical_unit_is_read_out_as_a_ucum_code_the_ingest_reads_as_it() -> None:
    units = PackRegistry.from_directory().in_force(DEFAULT_PACK_ID, on=None).pack.units
    for rule in units.kinds.values():
        assert UCUM_UNITS[UCUM_OF_UNIT.get(rule.canonical, rule.canonical)] == rule.canonical


def test_date_prefixes_at_the_day_boundaries() -> None:
    start = datetime(2026, 2, 27, tzinfo=SHANGHAI)
    end = datetime(2026, 2, 28, tzinfo=SHANGHAI)
    assert fhir_search.date_bounds(["2026-02-27"], SHANGHAI) == [("ge", start), ("lt", end)]
    assert fhir_search.date_bounds(["gt2026-02-27"], SHANGHAI) == [("ge", end)]
    assert fhir_search.date_bounds(["le2026-02-27"], SHANGHAI) == [("lt", end)]
    assert fhir_search.date_bounds(["lt2026-02-27"], SHANGHAI) == [("lt", start)]
    at = datetime.fromisoformat("2026-02-27T07:00:00+08:00")
    assert fhir_search.date_bounds(["eq2026-02-27T07:00:00+08:00"], SHANGHAI) == [("ge", at), ("le", at)]


def test_count_is_bounded_and_the_cursor_round_trips() -> None:
    assert fhir_search.page_of({"_count": ["100000"]}).count == fhir_search.MAX_COUNT
    at = datetime.fromisoformat("2026-02-27T07:00:00+08:00")
    assert fhir_search.cursor_value(fhir_search.cursor_text(at, 17)) == (at, 17)
