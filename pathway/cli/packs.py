"""``pathway packs``: the rule packs loaded, and one of them in words (``pathway packs describe``)."""

from __future__ import annotations

import sys


def _packs() -> int:
    from rules.registry import PackRegistry

    for loaded in PackRegistry.from_directory().all():
        pack = loaded.pack
        counts = f"{len(pack.rules)} rules, {len(pack.schedules)} schedules"
        print(f"{pack.id}\t{pack.version}\teffective {pack.effective_from}\t{counts}\tsha256 {loaded.sha256}")
    return 0


def _describe_pack(pack_id: str | None, version: str | None, form: str) -> int:
    """``pathway packs describe``: the pack in words, on stdout (``--format md``: docs/PATHWAY.md)."""
    from rules import describe
    from rules.registry import DEFAULT_PACK_ID, PackRegistry

    loaded = PackRegistry.from_directory().get(pack_id or DEFAULT_PACK_ID, version)
    sys.stdout.write(describe.markdown(loaded) if form == "md" else describe.text(loaded))
    return 0
