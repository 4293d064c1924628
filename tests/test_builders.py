from pathway.clinical.tiers import RiskTier
from tests.builders import bp_crisis_at_clinic, controlled_hypertensive
from tests.conftest import Pathway


def test_controlled_hypertensive_is_blue(pathway: Pathway) -> None:
    assert pathway.assess(controlled_hypertensive()).tier is RiskTier.BLUE


def test_clinic_crisis_is_red(pathway: Pathway) -> None:
    assert pathway.assess(bp_crisis_at_clinic()).tier is RiskTier.RED
