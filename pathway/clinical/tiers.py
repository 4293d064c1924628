"""Risk tiers, management levels, referral urgencies, task kinds and team roles (PATHWAY.md §4–5)."""

from __future__ import annotations

from enum import StrEnum


class RiskTier(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    BLUE = "blue"

    @property
    def severity(self) -> int:
        """Higher is worse: the patient's tier is the worst tier fired."""
        return _TIER_SEVERITY[self]


_TIER_SEVERITY = {RiskTier.BLUE: 0, RiskTier.YELLOW: 1, RiskTier.RED: 2}


class ManagementLevel(StrEnum):
    CENTER = "center"  # 三高中心
    BASE = "base"  # 三高基地
    HOME = "home"  # 三高之家


class ReferralUrgency(StrEnum):
    EMERGENCY = "emergency"
    URGENT = "urgent"
    ROUTINE = "routine"


class TaskKind(StrEnum):
    EMERGENCY_REFERRAL = "emergency_referral"
    URGENT_REFERRAL = "urgent_referral"
    BP_RECHECK = "bp_recheck"
    ROUTINE_REFERRAL = "routine_referral"
    REFERRAL_FOLLOW_UP = "referral_follow_up"
    FOLLOW_UP_VISIT = "follow_up_visit"
    LIPID_RECHECK = "lipid_recheck"
    DATA_GAP = "data_gap"
    ANNUAL_CHECK = "annual_check"
    COMPLICATION_SCREENING = "complication_screening"
    # PATHWAY.md §7 (pack 2020.4)
    MEDICATION_REVIEW = "medication_review"
    ADHERENCE_SUPPORT = "adherence_support"
    STATIN_START = "statin_start"
    REFILL_REVIEW = "refill_review"


class TeamRole(StrEnum):
    """Who in the GP team (家庭医生团队) does a task; the pack chooses it per task kind."""

    GP = "gp"  # family doctor
    HEALTH_MANAGER = "health_manager"  # 健康管理师: calls, home visits, reminders
    SPECIALIST = "specialist"  # 三高中心 review
