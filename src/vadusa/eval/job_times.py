"""How long each job of a finished Snakemake run took, from Snakemake's own records
(``.snakemake/metadata/``: one JSON file per output, named by its base64 path, with the rule,
the job's hash and its start and end times). ``vadusa job-times`` prints the table that
docs/budget.md quotes: every job in the order it started, its start (minutes after the first
job) and its duration, and the run's wall time from the first start to the last end.

Jobs that ran side by side overlap in time; the wall time is what the budget counts.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any


class JobTimesError(ValueError):
    pass


def read_jobs(workdir: str | Path, under: str = "") -> list[dict[str, Any]]:
    """One row per finished job whose outputs lie under ``under`` (a path prefix, relative to
    ``workdir``): rule, outputs, start and end (seconds since the epoch), sorted by start."""
    metadata = Path(workdir) / ".snakemake" / "metadata"
    if not metadata.is_dir():
        raise JobTimesError(f"no Snakemake records in {metadata}: run the workflow from "
                            f"{workdir} first (or give the directory it ran in)")
    jobs: dict[tuple[str, int], dict[str, Any]] = {}
    for record in metadata.iterdir():
        try:
            output = base64.b64decode(record.name + "=" * (-len(record.name) % 4)).decode()
            blob = json.loads(record.read_text())
        except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not a record of an output (Snakemake keeps nothing else here)
        if not output.startswith(under) or blob.get("incomplete") or not blob.get("endtime"):
            continue
        job = jobs.setdefault((blob["rule"], blob.get("job_hash", 0)), {
            "rule": blob["rule"], "outputs": [], "start": blob["starttime"],
            "end": blob["endtime"]})
        job["outputs"].append(output)
        job["start"] = min(job["start"], blob["starttime"])
        job["end"] = max(job["end"], blob["endtime"])
    if not jobs:
        raise JobTimesError(f"no finished jobs with outputs under {under!r} in {metadata}")
    return sorted(jobs.values(), key=lambda j: (j["start"], j["rule"]))


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def job_table(jobs: list[dict[str, Any]]) -> str:
    """Markdown: each job's rule, first output, start (min) and duration; then the wall time."""
    first = min(j["start"] for j in jobs)
    lines = ["| job | output | start (min) | time |", "|---|---|---:|---:|"]
    for j in jobs:
        output = min(j["outputs"], key=len)
        lines.append(f"| `{j['rule']}` | `{output}` | {(j['start'] - first) / 60:.0f} | "
                     f"{_clock(j['end'] - j['start'])} |")
    wall = max(j["end"] for j in jobs) - first
    lines.append("")
    lines.append(f"{len(jobs)} jobs, {_clock(wall)} from the first start to the last end.")
    return "\n".join(lines) + "\n"
