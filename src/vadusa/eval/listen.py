"""``vadusa listen``: a page to listen to a few test utterances side by side, and a figure of
where decoding put each phone.

    corpus recordings + evaluation directories (resynthesis, AR, VADUSA, ...) with their wavs/
    -> <out>/index.html: one row per utterance, one player per system, each with what the
       judge heard and its WER (the audio is embedded, so the page works offline and inside
       the Snakemake report)
    -> <out>/alignment.png: each decoded system's output spectrogram and, for a model trained
       with durations, the phone boundaries its decoding planned (tokens.jsonl's ``plan``):
       free-running decoding should speak each phone inside its planned span

Systems are given as ``name=directory``; a directory is an ``evaluate`` or ``resynthesize``
output (``metrics.json`` + ``wavs/<id>.wav``). The recordings come from the corpus.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from vadusa.atomic import write_text_atomic
from vadusa.data import audio
from vadusa.data.manifest import manifest_path, read_manifest


class ListenError(ValueError):
    pass


def _wav_uri(wave: np.ndarray, rate: int) -> str:
    buffer = io.BytesIO()
    sf.write(buffer, wave, rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def _system(directory: Path) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """-> (judged rows by id, decoded records by id) of one evaluation directory."""
    metrics_path = directory / "metrics.json"
    if not metrics_path.is_file():
        raise ListenError(f"no metrics.json in {directory}: run its evaluation first")
    rows = {r["id"]: r for r in json.loads(metrics_path.read_text())["per_utterance"]}
    records = {}
    tokens = directory / "tokens.jsonl"
    if tokens.is_file():
        for line in tokens.read_text().splitlines():
            record = json.loads(line)
            records[record["id"]] = record
    return rows, records


def listening_page(corpus_dir: Path, split: str, systems: dict[str, Path], count: int,
                   out_dir: Path, frame_rate: float) -> Path:
    """Write ``index.html`` (and ``alignment.png`` when the decoders planned durations) for the
    first ``count`` utterances of ``split`` that every system has; returns the page."""
    out_dir = Path(out_dir)
    judged = {name: _system(Path(d)) for name, d in systems.items()}
    recordings = read_manifest(manifest_path(corpus_dir, split))
    chosen = [r for r in recordings
              if all(r.id in rows and (Path(systems[n]) / "wavs" / f"{r.id}.wav").is_file()
                     for n, (rows, _) in judged.items())][:count]
    if not chosen:
        raise ListenError(f"no {split} utterance is in every one of {', '.join(systems)}")
    cells = ["<tr><th>text</th><th>recording</th>"
             + "".join(f"<th>{html.escape(n)}</th>" for n in systems) + "</tr>"]
    for rec in chosen:
        wave, rate = audio.read(rec.audio_path, rec.offset, rec.num_samples)
        row = [f"<td><b>{html.escape(rec.id)}</b><br>{html.escape(rec.text)}</td>",
               f"<td><audio controls preload='none' src='{_wav_uri(wave, rate)}'></audio></td>"]
        for name, (rows, _) in judged.items():
            out, out_rate = audio.read(Path(systems[name]) / "wavs" / f"{rec.id}.wav")
            judged_row = rows[rec.id]
            row.append(f"<td><audio controls preload='none' src='{_wav_uri(out, out_rate)}'>"
                       f"</audio><br><small>heard: <i>{html.escape(judged_row['hypothesis'])}"
                       f"</i> (WER {100 * judged_row['wer']:.0f} %)</small></td>")
        cells.append("<tr>" + "".join(row) + "</tr>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>listen</title><style>"
            "body{font-family:sans-serif} td,th{border:1px solid #ccc;padding:6px;"
            "vertical-align:top} table{border-collapse:collapse} audio{width:220px}</style>"
            f"</head><body><h3>{len(chosen)} {split} utterances, side by side</h3>"
            "<p>Each system's output as the Whisper judge heard it, with its WER on the "
            "utterance.</p><table>" + "".join(cells) + "</table></body></html>\n")
    write_text_atomic(out_dir / "index.html", page)
    decoded = {n: recs for n, (_, recs) in judged.items() if recs}
    plot_plans(chosen, systems, decoded, frame_rate, out_dir / "alignment.png")
    return out_dir / "index.html"


def plot_plans(chosen: list, systems: dict[str, Path], decoded: dict[str, dict],
               frame_rate: float, path: Path) -> Path:
    """One panel per utterance and decoded system: the output's log-mel spectrogram with the
    phone boundaries and symbols of the durations its decoding planned, if it planned any."""
    from vadusa.eval.figures import phone_spans, save_figure, stacked_panels  # noqa: PLC0415

    panels = [(rec, name) for rec in chosen for name in decoded] or [
        (rec, name) for rec in chosen for name in systems]
    fig, axes = stacked_panels(len(panels), 2.4)
    for ax, (rec, name) in zip(axes, panels, strict=True):
        wave, rate = audio.read(Path(systems[name]) / "wavs" / f"{rec.id}.wav")
        plan = decoded.get(name, {}).get(rec.id, {}).get("plan")
        note = "" if plan is not None else " (no planned durations)"
        spans = None if plan is None else (plan["lead"], plan["symbols"], plan["durations"])
        phone_spans(ax, wave, rate, f"{name}, {rec.id}: {rec.text}{note}", spans, frame_rate,
                    end_line=True)
    axes[-1].set_xlabel("seconds (white: planned phone starts; cyan: planned end)")
    return save_figure(fig, path)
