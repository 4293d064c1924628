"""The JSON answers that copy a domain value field for field stay in step with it.

The response models are the API's contract (names, descriptions, examples in the OpenAPI document)
and are kept apart from the domain dataclasses on purpose: a domain change must not silently change
the contract. But a field added to the domain and forgotten in the answer (or the other way) would
be dropped without a word by ``model_validate(..., from_attributes=True)``; these tests catch it.
"""

from __future__ import annotations

import dataclasses
import typing

import pytest
from pydantic import BaseModel

from api.schemas import PatientListItem
from api.teams import CrisisReadingRead, ListItemRead
from pathway.teams import daily_tasks, patient_search, team_store

PAIRS: list[tuple[type[BaseModel], type[object]]] = [
    (ListItemRead, daily_tasks.ListItem),
    (CrisisReadingRead, team_store.CrisisReading),
    (PatientListItem, patient_search.FoundPatient),
]


@pytest.mark.parametrize(("model", "value"), PAIRS, ids=lambda t: t.__name__)
def test_an_answer_has_exactly_the_fields_of_the_domain_value(
    model: type[BaseModel], value: type[object]
) -> None:
    assert list(model.model_fields) == [f.name for f in dataclasses.fields(value)]  # type: ignore[arg-type]


@pytest.mark.parametrize(("model", "value"), PAIRS, ids=lambda t: t.__name__)
def test_each_field_has_the_domain_type(model: type[BaseModel], value: type[object]) -> None:
    hints = typing.get_type_hints(value)
    for name, info in model.model_fields.items():
        expected, answered = hints[name], info.annotation
        if dataclasses.is_dataclass(typing.get_args(expected)[0] if typing.get_args(expected) else expected):
            continue  # a nested domain value has its own answer model (paired above)
        assert answered == expected, name
