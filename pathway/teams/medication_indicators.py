"""The §7 team indicators (PATHWAY.md §7, additions to §6), each a numerator over a denominator.

- 规律服药率: patients whose latest adherence recorded within the pack's adherence window is
  ``regular`` / patients with an adherence recorded in that window.
- 他汀使用率 (ASCVD): ASCVD patients ``on_statin`` / ASCVD patients.
- 他汀使用率 (high risk): patients of a lipid stratum the pack counts (high or above) ``on_statin``
  / those patients.
- 降压药联合治疗率: hypertensive patients on at least the pack's number of antihypertensive classes
  / hypertensive patients on any.

Every fact is the pure :func:`pathway.clinical.medication_facts.medication_facts` of the patient's
history as of the moment (a stopped statin, a supply lapsed beyond the pack's lapse window, a
combination pill's two classes, all as the rules see them); only its adherence window is the
indicator's (the year) rather than the rules' (the last visits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from pathway.clinical.conditions import FactValue
from pathway.clinical.history import PatientHistory
from pathway.clinical.medication import Adherence, MedicationTable
from pathway.clinical.medication_facts import medication_facts
from pathway.clinical.parameters import MedicationIndicators
from pathway.clinical.vocabulary import Condition
from pathway.teams.rates import Rate


@dataclass
class MedicationRates:
    regular_adherence: Rate = field(default_factory=Rate)
    statin_use_ascvd: Rate = field(default_factory=Rate)
    statin_use_high_risk: Rate = field(default_factory=Rate)
    antihypertensive_combination: Rate = field(default_factory=Rate)


class MedicationCounter:
    """Counts the managed patients one by one into :class:`MedicationRates`."""

    def __init__(
        self, definitions: MedicationIndicators, table: MedicationTable, as_of: datetime, tz: ZoneInfo
    ) -> None:
        self.rates = MedicationRates()
        self._definitions = definitions
        self._as_of, self._tz = as_of, tz
        self._table = table
        if table.windows is not None:
            windows = table.windows.model_copy(
                update={"adherence_window_days": definitions.adherence_window_days}
            )
            self._table = table.model_copy(update={"windows": windows})

    def count(
        self,
        patient_id: int,
        conditions: frozenset[Condition],
        history: PatientHistory,
        snapshot: dict[str, FactValue],
    ) -> None:
        """Count one managed patient; ``snapshot`` is the patient's snapshot facts (ASCVD, stratum)."""
        facts = medication_facts(
            history.prescriptions, history.encounters, self._table, conditions, None, self._as_of, self._tz
        ).facts
        rates = self.rates
        adherence = facts.get("latest_adherence")
        if isinstance(adherence, str):
            rates.regular_adherence.count(patient_id, met=adherence == Adherence.REGULAR.value)
        on_statin = facts.get("on_statin") is True
        if snapshot.get("has_ascvd") is True:
            rates.statin_use_ascvd.count(patient_id, met=on_statin)
        if snapshot.get("lipid_stratum") in self._definitions.statin_strata:
            rates.statin_use_high_risk.count(patient_id, met=on_statin)
        classes = facts.get("antihypertensive_classes")
        if Condition.HYPERTENSION in conditions and isinstance(classes, int) and classes > 0:
            met = classes >= self._definitions.combination_min_classes
            rates.antihypertensive_combination.count(patient_id, met=met)
