"""The editions of an impact run (:mod:`pathway.editions`), built from the registry's packs and a
candidate: a composition piece shared by ``pathway packs impact`` and ``POST /v1/packs/impact``."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from pathway.clinical.errors import CandidatePackInvalid
from pathway.clinical.horizon import reading_horizon
from pathway.editions.replay import Edition, Editions
from rules.evaluation import Evaluator
from rules.registry import LoadedPack, PackRegistry


def pack_edition(evaluator: Evaluator, loaded: LoadedPack, tz: ZoneInfo) -> Edition:
    """One edition as an impact run evaluates with it (``evaluator`` must hold the pack)."""
    return Edition(
        pack=loaded.ref,
        assess=lambda history, as_of: evaluator.assess(history, as_of, loaded, tz),
        horizon=reading_horizon(loaded.pack.snapshot),
        reads_prescriptions=loaded.pack.medication is not None,
    )


def impact_editions(
    registry: PackRegistry,
    candidate: LoadedPack,
    against: str | None,
    on: date,
    tz: ZoneInfo,
    evaluator: Evaluator | None = None,
) -> Editions:
    """The editions of an impact run: the registry's edition ``against`` (default: the one in force
    ``on``) of the candidate's pack, and the candidate. ``evaluator`` holds the registry's packs (a
    server's); without it, or for a candidate not in the registry, one is built for the run's packs.
    A candidate with the id and version of a registered edition but other content is refused."""
    pack_id = candidate.pack.id
    baseline = registry.get(pack_id, against) if against is not None else registry.in_force(pack_id, on)
    registered = {(p.pack.id, p.pack.version): p for p in registry.all()}.get(
        (pack_id, candidate.pack.version)
    )
    if registered is not None and registered.sha256 != candidate.sha256:
        raise CandidatePackInvalid(
            f"pack {pack_id} version {candidate.pack.version} is registered with other content"
            f" (sha256 {registered.sha256[:12]}…): a changed pack must bump its version",
            "pack",
        )
    base_evaluator = evaluator or Evaluator(PackRegistry([baseline]))
    if registered is not None and evaluator is not None:
        candidate_evaluator = evaluator
    elif registered is not None and registered.pack.version == baseline.pack.version:
        candidate_evaluator = base_evaluator
    else:
        candidate_evaluator = Evaluator(PackRegistry([candidate]))
    return Editions(
        baseline=pack_edition(base_evaluator, baseline, tz),
        candidate=pack_edition(candidate_evaluator, registered or candidate, tz),
        tz=tz,
    )
