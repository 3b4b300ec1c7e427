"""Where a family's tokens come from, said where results are shown: a family whose tokens come
from a model trained here from scratch (``tokens.<family>.weights: scratch``) is a small recipe
that runs on a laptop, not the published model the paper's numbers rest on. Both reports read
it: the ``vadusa wandb-report`` page (``tracking/report.py``) and the Snakemake report's front
page (``workflow/rules/report.smk`` passes it to the template). Light on purpose: the Snakefile
imports it."""

from __future__ import annotations

from vadusa.config import Config


def provenance(cfg: Config, family: str) -> list[str]:
    """The note on ``family``'s tokens: one sentence pair if trained here, else none."""
    units = getattr(cfg.tokens, family, None)
    if getattr(units, "weights", None) != "scratch":
        return []
    if family == "encodec":
        what = f"{units.scratch.steps} steps of a small codec"
        published = ("the published 24 kHz EnCodec (tokens.encodec.weights: the path of "
                     "encodec_24khz-d7cc33bc.th)")
    else:
        what = f"{units.scratch.steps} steps of a {units.scratch.layers}-layer model"
        published = (f"a published checkpoint (tokens.{family}.weights: checkpoint, "
                     f"tokens.{family}.checkpoint: its path)")
    return [f"The {family} tokens come from a model trained here from scratch "
            f"(tokens.{family}.weights: scratch, {what}): a recipe that runs the family end to "
            f"end on a laptop, not the published model. Paper-scale runs load {published}; "
            "docs/tokens.md."]


def provenance_notes(cfg: Config) -> dict[str, list[str]]:
    """Every configured family's notes (``provenance``)."""
    return {family: provenance(cfg, family) for family in cfg.tokens.families}
