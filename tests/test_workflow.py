"""The Snakemake DAG: it parses, plans, validates its config, and runs on the tiny config."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf
import torch

from conftest import requires_voices
from vadusa.checkpoint import load_checkpoint
from vadusa.config import load_config
from vadusa.devices import bf16_decodes_faster

SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")


def snakemake_command(repo: Path, workdir: Path, *args: str) -> tuple[list[str], dict]:
    """The Snakemake command line on ``workdir`` with 2 cores, and its environment (this
    Python's scripts first on PATH)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return [SNAKEMAKE, "-s", str(repo / "Snakefile"), "-d", str(workdir), "--cores", "2",
            *args], env


def snakemake(repo: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command, env = snakemake_command(repo, workdir, *args)
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_dry_run_default_config_plans_the_corpus(repo: Path, tmp_path: Path) -> None:
    result = snakemake(repo, tmp_path, "-n", "--configfile", str(repo / "config/config.yaml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert "prepare_corpus" in out and "corpus_qa" in out
    assert "results/default/corpus/manifests/train.jsonl.gz" in out
    # the default target is the default family's, end to end: no second family's SSL model
    for planned in ("train_vocoder", "train_heads", "sweep", "table"):
        assert f"rule {planned}:" in out, planned
    # the comparisons (classic draft model, open questions) are reproduce_all's
    for left_out in ("train_draft", "open_table", "train_heads_open"):
        assert f"rule {left_out}:" not in out, left_out
    assert "train_ssl" not in out and "results/default/tokens/hubert" not in out
    # the frozen heads are swept; the Hydra heads' sweep is reproduce_all's (90 minutes)
    assert "results/default/sweep/whisper/frozen/" in out
    assert "results/default/sweep/whisper/hydra/" not in out
    # the paper's heads (frozen, joint) are trained, raced and judged; the Hydra and shared
    # heads, their races and the tree-size races are reproduce_all's (90 minutes)
    for mode in ("frozen", "joint"):
        assert f"results/default/models/whisper/{mode}/heads.pt" in out, mode
        assert f"results/default/eval/whisper/vadusa-{mode}-tau3/" in out, mode
    for mode in ("hydra", "hydra-joint", "shared"):
        assert f"results/default/models/whisper/{mode}/" not in out, mode
        assert f"results/default/eval/whisper/vadusa-{mode}-tau3/" not in out, mode
    assert "rule bench_vadusa:" in out
    assert "rule bench_trees:" not in out and "rule bench_twins:" not in out
    # the unit vocoder, the critical path's longest job, goes first among the ready jobs
    assert re.search(r"rule train_vocoder:.*?priority: 10", out, re.S)


def test_reproduce_all_plans_every_family_method_and_question(repo: Path, tmp_path: Path
                                                              ) -> None:
    result = snakemake(repo, tmp_path, "reproduce_all", "-n", "--configfile",
                       str(repo / "config/config.yaml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats")[-1], re.M))
    # three families: each with frozen and joint heads, a sweep, its open questions; units
    # from a trained SSL model (hubert), and melrvq's residual k-means, decoded by HiFi-GAN
    # (no unit vocoder) after its NAR stage. No codec is trained: encodec is not among the
    # embedded default's families (its scratch codec does not speak in the budget)
    assert counts["train_ssl"] == "1" and "train_codec" not in counts
    assert counts["fit_kmeans"] == "3" and counts["train_vocoder"] == "2"
    assert counts["tokenize"] == "3" and counts["train_base"] == "3"
    assert counts["train_nar"] == "1"  # melrvq's
    assert "--nar results/default/models/melrvq/nar/nar.pt" in out
    # measure.hydra: Hydra heads frozen and joint beside MEDUSA's, a sweep of the frozen ones;
    # measure.shared: shared heads on the frozen base, not swept; both for the default family
    # only (measure.hydra_shared_families): 5 kinds of heads for whisper, 2 for the others
    assert counts["train_heads"] == "9" and counts["sweep"] == "4"
    assert "results/default/models/whisper/hydra-joint/heads.pt" in out
    assert "results/default/models/hubert/hydra" not in out
    assert "results/default/models/melrvq/shared" not in out
    assert counts["open_table"] == "3" and counts["table_all"] == "1"
    assert counts["copy_synthesis"] == "2" and counts["resynthesize"] == "6"
    assert "results/default/tables/all.md" in out
    assert counts["wandb_report"] == "1"  # the local page comparing the methods
    assert "results/default/tokens/encodec" not in out
    # the embedded default aligns by durations: an aligner and a duration model per family
    assert counts["align"] == "3" and counts["train_durations"] == "3"
    assert counts["listen"] == "3"
    # beyond the default target: every mode judged, the tree-size races (3 families), the
    # MEDUSA heads raced beside their twins (whisper's frozen and joint)
    assert counts["evaluate_vadusa"] == "9" and counts["bench_trees"] == "6"
    assert counts["bench_twins"] == "2" and "results/default/bench/whisper/twins-joint.json" in out


def test_one_familys_share_of_reproduce_all_is_a_target(repo: Path, tmp_path: Path) -> None:
    """`snakemake reproduce_hubert`: hubert's tokens, models, races, evaluations and open
    questions, and nothing of another family's (the corpus and its copy synthesis, shared)."""
    result = snakemake(repo, tmp_path, "reproduce_hubert", "-n", "--configfile",
                       str(repo / "config/config.yaml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats")[-1], re.M))
    assert counts["train_ssl"] == counts["train_base"] == counts["open_table"] == "1"
    # frozen and joint MEDUSA heads: Hydra and shared heads are the default family's
    assert counts["train_heads"] == "2" and counts["evaluate_open"] == "7"
    assert counts["train_draft"] == counts["listen"] == "1" and counts["sweep"] == "1"
    assert counts["prepare_corpus"] == counts["copy_synthesis"] == "1"
    assert "table_all" not in counts and "wandb_report" not in counts
    assert "results/default/models/whisper" not in out
    assert "results/default/tokens/melrvq" not in out


def test_ablation_plans_one_model_per_variant(repo: Path, tmp_path: Path) -> None:
    """`snakemake ablation`: the default family's AR model again per variant (variants that
    align by durations read the same aligner and duration model), each judged, one table."""
    result = snakemake(repo, tmp_path, "ablation", "-n", "--configfile",
                       str(repo / "config/config.yaml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats")[-1], re.M))
    variants = load_config([repo / "config/config.yaml"]).ablation.variants
    assert counts["ablation_train"] == counts["ablation_evaluate"] == str(len(variants))
    assert counts["align"] == "1" and counts["ablation_table"] == "1"
    # judged on dev (ablation.split), the configured model beside them on the same split
    assert counts["ablation_reference"] == "1"
    assert "results/default/eval/whisper/ar/dev/metrics.json" in out
    assert "--split dev" in out and "results/default/ablation/whisper/none/dev/metrics.json" in out
    for name, overrides in variants.items():
        assert f"results/default/ablation/whisper/{name}/base.pt" in out
        assert all(f"--set '{o}'" in out for o in overrides)
    assert "results/default/tables/ablation_whisper.html" in out


@pytest.mark.parametrize("name", ["libritts.yaml", "libriheavy.yaml"])
def test_dry_run_paper_scale_configs(repo: Path, tmp_path: Path, name: str) -> None:
    result = snakemake(repo, tmp_path, "-n", "--configfile", str(repo / "config" / name))
    assert result.returncode == 0, result.stderr


def test_reproduce_zero_shot_plans_the_protocol_on_the_local_libritts(repo: Path,
                                                                     tmp_path: Path) -> None:
    """The documented command: libritts.yaml + libritts-local.yaml, nothing else changed."""
    result = snakemake(repo, tmp_path, "reproduce_zero_shot", "-n", "--configfile",
                       str(repo / "config/libritts.yaml"),
                       str(repo / "config/libritts-local.yaml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out.split("Job stats")[-1], re.M))
    # the vocoder renders voices from d-vectors; AR, VADUSA and VADUSA-wt judged, each mode
    # raced on unseen and on seen speakers
    assert counts["speaker_embeddings"] == counts["train_vocoder"] == "1"
    assert counts["evaluate_ar"] == "1" and counts["evaluate_vadusa"] == "2"
    assert counts["bench_zero_shot"] == "4" and counts["table_zero_shot"] == "1"
    assert "results/libritts-local/corpus/" in out and "--speakers unseen" in out
    assert "train_ssl" not in counts and "sweep" not in counts  # whisper only, no sweep


def test_config_typo_fails_the_workflow_naming_the_key(repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: x\ncorpus:\n  sythetic: {hours: 1}\n")
    result = snakemake(repo, tmp_path, "-n", "--configfile", str(bad))
    assert result.returncode != 0
    assert "corpus.sythetic" in result.stdout + result.stderr


def kill_during_base_training(repo: Path, workdir: Path, config: str) -> int:
    """Start the DAG towards the default family's base model, SIGKILL it (Snakemake and every
    job) as soon as training has written its first checkpoint, and return that checkpoint's
    step."""
    target = "results/tiny/models/whisper/base/base.pt"  # relative to the working directory
    out = workdir / target
    command, env = snakemake_command(repo, workdir, target, "--configfile", config)
    dag = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=env, start_new_session=True)
    try:
        while not out.with_name("last.pt").is_file():
            assert dag.poll() is None, "the DAG ended before base training wrote a checkpoint"
            time.sleep(0.01)
    finally:
        os.killpg(dag.pid, signal.SIGKILL)
        dag.wait()
    # checkpoints are written to a temporary file and renamed: last.pt is whole
    return int(load_checkpoint(out.with_name("last.pt"))["state"]["position"]["step"])


@requires_voices
@pytest.mark.slow
@pytest.mark.first
def test_tiny_dag_runs_and_reruns_nothing(repo: Path, tmp_path: Path) -> None:
    tiny = str(repo / "config" / "tiny.yaml")
    steps = load_config([tiny]).train.steps
    # a fault: the DAG killed during base-model training, after its first checkpoint
    killed_at = kill_during_base_training(repo, tmp_path, tiny)
    assert 0 < killed_at < steps
    assert not (tmp_path / "results/tiny/models/whisper/base/base.pt").exists()
    # a killed Snakemake leaves its lock: it says to unlock, as a user would
    unlocked = snakemake(repo, tmp_path, "reproduce_all", "--unlock", "--configfile", tiny)
    assert unlocked.returncode == 0, unlocked.stderr[-3000:]
    # the whole DAG (reproduce_all: every family, method, open question and table), re-run
    # after the kill: the base model resumes from its checkpoint, and the jobs that had
    # finished (corpus, the default family's k-means and tokens) are not run again
    result = snakemake(repo, tmp_path, "reproduce_all", "--rerun-incomplete",
                       "--configfile", tiny)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", (result.stdout + result.stderr)
                             .split("Job stats")[1].split("\n\n")[0], re.M))
    assert "prepare_corpus" not in counts and counts["train_base"] == "4"
    # tiny aligns by durations; the default family's aligner and duration model ran before
    # base training was killed
    assert counts["align"] == "3" and counts["train_durations"] == "3"
    # hubert's and melrvq's k-means; encodec: none
    assert counts["tokenize"] == "3" and counts["fit_kmeans"] == "2"
    assert counts["train_nar"] == "2"
    resumed = (tmp_path / "results/tiny/logs/train_base_whisper.log").read_text()
    assert f"resuming from results/tiny/models/whisper/base/last.pt at step {killed_at}" \
        in resumed, resumed[-2000:]
    corpus = tmp_path / "results" / "tiny" / "corpus"
    stats = json.loads((corpus / "stats.json").read_text())
    assert stats["speakers"] == 4 and all(stats["utterances"].values())
    qa = json.loads((corpus / "qa" / "metrics.json").read_text())
    assert qa["overall"]["utterances"] == 12
    assert (tmp_path / "results" / "tiny" / "logs" / "prepare_corpus.log").is_file()
    for family in ("whisper", "hubert", "encodec"):
        tokens = json.loads((tmp_path / "results/tiny/tokens" / family / "stats.json").read_text())
        assert abs(tokens["frames_per_second"] - 50.0) < 1.0  # 16 kHz / 320 for the codec too
        for source, count in (("test", stats["utterances"]["test"]), ("librivox", 5)):
            resynth = tmp_path / "results/tiny/resynth" / family / source
            metrics = json.loads((resynth / "metrics.json").read_text())
            assert metrics["utterances"] == count and not metrics["failures"]
            assert 0.0 <= metrics["input_wer"] <= 0.5  # the inputs are intelligible
            assert len(list((resynth / "wavs").glob("*.wav"))) == count
    # the base model's stage: AR evaluation on the test split and the AR benchmark
    evaluation = json.loads((tmp_path / "results/tiny/eval/whisper/ar/test/metrics.json")
                            .read_text())
    assert evaluation["utterances"] + len(evaluation["failures"]) == stats["utterances"]["test"]
    assert evaluation["tokens_per_second"] > 0 and 0.0 <= evaluation["cer"]
    # speaker similarity to the recordings: measured, or each miss recorded with its reason
    sims = [r["sim"] for r in evaluation["per_utterance"] if "sim" in r]
    assert len(sims) + len(evaluation["sim_failures"]) == evaluation["utterances"]
    assert all(-1.0 <= s <= 1.0 for s in sims)
    assert evaluation["ci"]["wer"]["low"] <= evaluation["wer"] <= evaluation["ci"]["wer"]["high"]
    # tiny.yaml decodes in float32; where the CPU has bfloat16, AR races in it too (a row of
    # its own, right after the first; the faster of the two is the baseline)
    other = ["ar-b1-bfloat16"] if bf16_decodes_faster(torch.device("cpu")) else []
    bench = json.loads((tmp_path / "results/tiny/bench/whisper/ar.json").read_text())
    assert [b["setting"] for b in bench] == ["ar-b1", *other, "ar-b8"]
    assert min(b["speedup"] for b in bench[:1 + len(other)]) <= 1.0
    assert bench[0]["tokens"] > 0  # batched AR decodes batch 1's sequences, in request order
    assert bench[0]["tokens_sha256"] == bench[-1]["tokens_sha256"]
    # VADUSA: heads (frozen and joint), calibration, bench against AR, evaluation; the
    # MEDUSA heads' race again with the Hydra heads of the same mode beside them, in the same
    # run (twins-<mode>.json; shared heads beside the frozen ones)
    for mode, hydra in (("frozen", "hydra"), ("joint", "hydra-joint")):
        twins = [hydra, "shared"] if mode == "frozen" else [hydra]
        own = ["vadusa-h2-n16-t1", "vadusa-h2-n16-t3", "typical-h2-n16"]
        bench = json.loads((tmp_path / f"results/tiny/bench/whisper/vadusa-{mode}.json")
                           .read_text())
        assert [b["setting"] for b in bench] == ["ar-b1", *other, *own]
        bench = json.loads((tmp_path / f"results/tiny/bench/whisper/twins-{mode}.json")
                           .read_text())
        assert [b["setting"] for b in bench] == [
            "ar-b1", *other, *own,
            *(s for t in twins for s in (f"{t}-h2-n16-t1", f"{t}-h2-n16-t3",
                                         f"typical-{t}-h2-n16"))]
        by = {b["setting"]: b for b in bench}
        assert by["ar-b1"]["tokens"] > 0  # tau = 1 is lossless: AR's sequences, one by one
        assert by["vadusa-h2-n16-t1"]["tokens_sha256"] == by["ar-b1"]["tokens_sha256"]
        assert by["vadusa-h2-n16-t1"]["mean_accepted"] > 1.0  # not a trivial pass
        if mode == "frozen":  # the same frozen base: lossless against its AR too (joint
            # heads each bring a base of their own, raced against the same AR's speed)
            for twin in twins:  # Hydra and shared heads, each on the same frozen base
                assert by[f"{twin}-h2-n16-t1"]["tokens_sha256"] == by["ar-b1"]["tokens_sha256"]
                assert by[f"{twin}-h2-n16-t1"]["mean_accepted"] > 1.0  # drafts were accepted
        assert load_checkpoint(tmp_path / f"results/tiny/models/whisper/{hydra}/heads.pt"
                               )["meta"]["heads"]["kind"] == "hydra"
        evaluation = json.loads((tmp_path / f"results/tiny/eval/whisper/vadusa-{mode}-tau3/test/"
                                 "metrics.json").read_text())
        assert evaluation["method"] == "vadusa" and evaluation["decoding"]["tau"] == 3
        race = json.loads((tmp_path / f"results/tiny/bench/whisper/trees-{mode}.json")
                          .read_text())
        assert [b["setting"] for b in race] == ["ar-b1", *other, *(
            s for t in ("vadusa", *twins) for s in (f"{t}-hall-n2-t3", f"{t}-hall-chain2-t3"))]
    # the codec family: its codec (trained here) is its tokenizer and its vocoder
    assert (tmp_path / "results/tiny/tokens/encodec/codec/codec.pt").is_file()
    assert not (tmp_path / "results/tiny/tokens/encodec/kmeans.npz").exists()
    assert not (tmp_path / "results/tiny/vocoder/encodec").exists()
    assert load_checkpoint(tmp_path / "results/tiny/models/encodec/base/base.pt"
                           )["meta"]["family"] == "encodec"
    race = json.loads((tmp_path / "results/tiny/bench/encodec/vadusa-frozen.json").read_text())
    by = {b["setting"]: b for b in race}
    assert by["ar-b1"]["tokens"] > 0  # lossless on codes too, sequence for sequence
    assert by["vadusa-h2-n16-t1"]["tokens_sha256"] == by["ar-b1"]["tokens_sha256"]
    evaluation = json.loads((tmp_path / "results/tiny/eval/encodec/vadusa-frozen-tau3/test/"
                             "metrics.json").read_text())
    assert evaluation["utterances"] + len(evaluation["failures"]) == stats["utterances"]["test"]
    assert evaluation["mean_accepted"] >= 1.0
    # as VALL-E: codebooks 2..N (tiny.yaml's codec has 2) from the NAR stage, all decoded
    assert evaluation["codebooks"] == 2 and evaluation["nar_real_time_factor"] > 0
    assert json.loads((tmp_path / "results/tiny/resynth/encodec/test/metrics.json").read_text()
                      )["codebooks"] == 2
    # melrvq: residual k-means over HiFi-GAN mels, every codebook stored; the AR model's
    # codebook 1 goes through the NAR stage, and evaluation decodes all codebooks
    rvq = json.loads((tmp_path / "results/tiny/tokens/melrvq/stats.json").read_text())
    assert abs(rvq["frames_per_second"] - 22050 / 512) < 1.0  # tiny.yaml: 2 mel frames a token
    assert json.loads((tmp_path / "results/tiny/tokens/melrvq/meta.json").read_text()
                      )["codebooks"] == 2
    nar = load_checkpoint(tmp_path / "results/tiny/models/melrvq/nar/nar.pt")["meta"]
    # nar.mel_stage (the default): a unit-to-mel over codebook 1, its mel decoded as it is
    assert nar["family"] == "melrvq" and nar["target"] == "mel"
    assert nar["dev"]["nar/dev_mel_loss"] > 0
    for system in ("ar", "vadusa-frozen-tau3"):
        evaluation = json.loads((tmp_path / f"results/tiny/eval/melrvq/{system}/test/"
                                 "metrics.json").read_text())
        assert evaluation["codebooks"] == 2 and evaluation["nar_real_time_factor"] > 0
        assert evaluation["nar_decoding"] == "continuous"
    assert "NAR RTF" in (tmp_path / "results/tiny/tables/all.md").read_text()
    copy = json.loads((tmp_path / "results/tiny/resynth/copy/test/metrics.json").read_text())
    assert copy["family"] == "mel" and copy["utterances"] == stats["utterances"]["test"]
    assert copy["wer"] <= 0.5  # HiFi-GAN on the recordings' own mels stays intelligible
    base = load_checkpoint(tmp_path / "results/tiny/models/whisper/base/base.pt")
    assert base["meta"]["text_frontend"] == "phonemes"  # tiny.yaml reads phonemes
    # alignment by durations: every split aligned, the duration model inside base.pt, and
    # every decoded utterance carries the plan it was decoded with
    assert base["meta"]["alignment"] == "duration" and base["meta"]["durations"]["seen"]
    aligned = json.loads((tmp_path / "results/tiny/durations/whisper/qa.json").read_text())
    assert aligned["utterances"] == {s: stats["utterances"][s] for s in ("train", "dev", "test")}
    assert 0 <= aligned["dev_phone_error_rate"]
    decoded = [json.loads(x) for x in (tmp_path / "results/tiny/eval/whisper/ar/test/"
                                       "tokens.jsonl").read_text().splitlines()]
    assert all(len(d["plan"]["durations"]) == len(d["plan"]["symbols"]) for d in decoded)
    page = (tmp_path / "results/tiny/listen/whisper/index.html").read_text()
    assert page.count("<audio") == 5 * min(4, stats["utterances"]["test"])  # + the recording
    assert "VADUSA tau 3" in page and "VADUSA-wt tau 3" in page
    tree = json.loads((tmp_path / "results/tiny/trees/whisper/frozen/tau3/tree-4.json")
                      .read_text())
    assert tree["nodes"] == 4 and tree["tau"] == 3
    sweep = tmp_path / "results/tiny/sweep/whisper/frozen"
    trials = list(csv.DictReader(open(sweep / "trials.csv")))
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]  # tiny.yaml: 2 trials
    for t in trials:  # tau 1..2, trees 2 and 4 (tiny.yaml), speed and WER both measured
        assert t["tau"] in ("1", "2") and t["tree"] in ("2", "4")
        assert float(t["speedup"]) > 0 and 0 <= float(t["wer"]) and float(t["ar_wer"]) >= 0
    chosen = load_config([sweep / "chosen.yaml"]).decoding
    assert chosen.method == "vadusa" and chosen.tau in (1, 2)
    assert all((sweep / f"{name}.png").is_file() for name in ("pareto", "tau", "heads", "tree"))
    table = (tmp_path / "results/tiny/tables/main.md").read_text()
    assert "| whisper | AR |" in table and "| whisper | VADUSA | 3 | 2 |" in table
    assert "| whisper | VADUSA-wt |" in table and "typical acceptance" in table
    # the floors beside it: copy synthesis of the test split and the LibriVox round trip
    for floor in ("copy synthesis (mel -> HiFi-GAN)", "LibriVox: recordings (judge floor)",
                  "LibriVox: resynthesis (tokens -> vocoder)"):
        assert f"| whisper | {floor} |" in table, floor
    every = (tmp_path / "results/tiny/tables/all.md").read_text()
    # reproduce_all's table also has the tree-size races and the other heads' WER (the main
    # table has them only when they were built before it: they are not the default target's)
    assert "| whisper | VADUSA, shared heads, tree race (dev) | 3 | all | chain:2 |" in every
    # the Hydra and shared heads raced beside MEDUSA's (bench_twins); the main table shows
    # them only when they happen to be built before it
    assert "| whisper | VADUSA, Hydra heads | 3 | 2 |" in every
    assert "| whisper | VADUSA-wt, Hydra heads | 3 | 2 |" in every
    assert "| whisper | VADUSA, shared heads | 3 | 2 |" in every  # mode shared, raced
    judged = [row for row in every.splitlines()
              if row.startswith("| whisper | VADUSA, shared heads | 3 | 2 |")]
    assert judged and re.search(r"\| \d+\.\d \[", judged[0]), judged  # a WER with its CI
    for family in ("whisper", "hubert", "encodec", "melrvq"):  # measure.bench_draft_tokens [2]
        assert f"| {family} | AR |" in every and f"| {family} | VADUSA-wt |" in every
        assert f"| {family} | draft model, gamma 2 |" in every
    draft = json.loads((tmp_path / "results/tiny/eval/whisper/draft/test/metrics.json")
                       .read_text())
    assert draft["method"] == "draft"
    assert draft["utterances"] + len(draft["failures"]) == stats["utterances"]["test"]
    # the open questions of the default family: tau 1, 3 and heads 1, 3 (tiny.yaml), each
    # setting evaluated next to AR on the same utterances and raced against it
    rows = list(csv.DictReader(open(tmp_path / "results/tiny/tables/open_whisper.csv")))
    assert [(r["question"], r["tau"], r["heads"]) for r in rows] == [
        ("AR", "", ""), ("tau", "1", "2"), ("tau", "3", "2"), ("heads", "3", "1"),
        ("heads", "3", "3")]
    assert all(r["speedup"] and r["wer"] for r in rows)
    assert all(1 <= int(r["depth"]) <= int(r["heads"]) for r in rows[1:])  # the tree's reach
    assert (tmp_path / "results/tiny/models/whisper/frozen-k3/heads.pt").is_file()
    for target in ("all", "reproduce_all"):
        again = snakemake(repo, tmp_path, target, "--configfile", tiny, "-n")
        assert "Nothing to be done" in again.stdout + again.stderr, target
    # a judge setting changes: only corpus_qa re-runs
    edited = tmp_path / "tiny-edited.yaml"
    edited.write_text(Path(tiny).read_text().replace("qa_per_voice: 3", "qa_per_voice: 2"))
    changed = snakemake(repo, tmp_path, "--configfile", str(edited), "-n")
    out = changed.stdout + changed.stderr
    assert "corpus_qa" in out and "prepare_corpus" not in out.split("Job stats")[-1]
    # the report of the run: a front page with the main table, the default family's plots
    # and the method and setup filled from tiny.yaml, and every figure and table of the
    # target in its category, with its caption

    def build_report(*target: str) -> tuple[str, dict, dict]:
        report = tmp_path / "report.html"
        built = snakemake(repo, tmp_path, *target, "--report", str(report), "--configfile", tiny)
        assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
        page = report.read_text()

        def variable(script: str) -> object:  # the report's data: JSON in its own <script>
            found = re.search(rf'<script id="{script}">\s*var \w+ = (.*);\n', page)
            return json.loads(found.group(1))

        return tuple(variable(script) for script in ("workflow-desc", "results", "categories"))

    # the default target's: no open questions, no table over every family
    front, results, categories = build_report()
    assert '<table class="vadusa-table">' in front and ">VADUSA-wt</td>" in front
    assert front.count("data:image/png;base64,") == 1  # the sweep's front
    assert "The same table over every family" not in front
    assert "4 voices (flite_rms, flite_slt, flite_awb, festival_kal)" in front
    assert "K = 2" in front and "temperature 1.0" in front
    assert {c: set(s) for c, s in categories.items()} == {
        "Corpus": {"synthetic corpus"}, "Tokens": {"whisper"}, "Main results": {"whisper"},
        "Sweep": {"whisper, frozen heads"}, "Alignment": {"whisper"}, "Listen": {"whisper"}}
    # corpus 2, tokens 1, main table 2 (HTML, CSV), the frozen heads' sweep of 4 plots + 2
    # CSVs (the Hydra heads' is reproduce_all's), alignments 1, listening page and its figure 2
    assert len(results) == 14 and all(r["caption"] for r in results.values())
    # reproduce_all's: every family, the open questions, the table over every family
    front, everything, categories = build_report("reproduce_all")
    assert front.count("data:image/png;base64,") == 2  # the sweep's front, the open questions
    assert "The same table over every family" in front
    # hubert and encodec (tiny.yaml) are trained here: the page says they are recipes
    assert front.count("tokens come from a model trained here from scratch") == 2
    families = {"whisper", "hubert", "encodec", "melrvq"}
    assert {c: set(s) for c, s in categories.items()} == {
        "Corpus": {"synthetic corpus"}, "Tokens": families,
        "Main results": {"whisper", "all families"}, "Open questions": families,
        # the Hydra heads: the default family's (measure.hydra_shared_families)
        "Sweep": {f"{f}, frozen heads" for f in families} | {"whisper, hydra heads"},
        "Alignment": families,
        "Listen": families}
    assert set(results) < set(everything) and all(r["caption"] for r in everything.values())
    main = results["results/tiny/tables/main.html"]
    assert main["mime_type"] == "text/html"
    assert "The main table of the default token family, whisper" in main["caption"]


@requires_voices
@pytest.mark.slow
@pytest.mark.first
def test_zero_shot_dag_on_a_libritts_shaped_tree(repo: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper's protocol end to end on a tiny LibriTTS-shaped tree (config/tiny-libritts.yaml
    after libritts.yaml): dev and test voices never heard in training, every test utterance
    prompted by another of its speaker, AR, VADUSA and VADUSA-wt judged and raced on unseen
    and seen speakers, the zero-shot table; then synthesis from the recording of a voice the
    corpus does not have."""
    from vadusa.cli import main  # noqa: PLC0415
    from vadusa.data.manifest import manifest_path, read_manifest  # noqa: PLC0415
    from vadusa.eval.resynthesize import librivox_utterances  # noqa: PLC0415

    configs = [str(repo / "config" / "libritts.yaml"), str(repo / "config" / "tiny-libritts.yaml")]
    root = tmp_path / "data" / "LibriTTS-tiny"  # tiny-libritts.yaml's root, in the workdir
    assert main(["make-corpus", "--layout", "libritts", str(root),
                 *(a for c in configs for a in ("--config", c))]) == 0
    result = snakemake(repo, tmp_path, "reproduce_zero_shot", "--configfile", *configs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = tmp_path / "results" / "tiny-libritts"
    corpus = run / "corpus"
    train = {r.speaker for r in read_manifest(manifest_path(corpus, "train"))}
    dev = {r.speaker for r in read_manifest(manifest_path(corpus, "dev"))}
    test = read_manifest(manifest_path(corpus, "test"))
    unseen = {r.speaker for r in test} - train
    assert len(unseen) >= 2 and dev and not dev & train  # LibriTTS's split of speakers
    assert {r.subset for r in test if r.speaker in train} == {"train-clean-100"}  # seen_test
    # the prompted model was validated on the dev voice it never trained on
    base = load_checkpoint(run / "models/whisper/base/base.pt")["meta"]
    assert base["prompt"] and not base["speaker_embedding"]
    assert load_checkpoint(run / "vocoder/whisper/unit2mel.pt")["meta"][
        "speaker_conditioning"] == "dvector"
    speaker_of = {r.id: r.speaker for r in test}
    for system in ("ar", "vadusa-frozen-tau3", "vadusa-joint-tau3"):
        evaluation = run / "eval/whisper" / system / "test"
        metrics = json.loads((evaluation / "metrics.json").read_text())
        assert metrics["prompted"] and {"seen", "unseen"} <= set(metrics["groups"])
        assert metrics["groups"]["unseen"]["speakers"] == len(unseen)
        scored = len(metrics["per_utterance"]) + len(metrics["failed_utterances"])
        assert scored == len(test)  # every test utterance judged or counted as failed
        pairs = list(csv.DictReader(open(evaluation / "prompts.tsv"), delimiter="\t"))
        assert len(pairs) == len(test)
        for pair in pairs:  # another utterance of the same speaker, never the target itself
            assert pair["prompt"] != pair["target"]
            assert speaker_of[pair["prompt"]] == speaker_of[pair["target"]]
    for mode in ("frozen", "joint"):
        for group in ("seen", "unseen"):
            race = json.loads((run / f"bench/whisper/zero-shot-{mode}-{group}.json").read_text())
            assert [r["method"] for r in race] == ["ar", *(["ar"] if len(race) == 3 else []),
                                                   "vadusa"]
            if mode == "frozen":  # tau 3 is lossy: the race only times it
                assert race[-1]["mean_accepted"] >= 1.0
    table = (run / "tables/zero_shot.md").read_text()
    for method in ("AR", "VADUSA, tau 3", "VADUSA-wt, tau 3"):
        for group in ("unseen", "seen"):
            row = [line for line in table.splitlines()
                   if line.startswith(f"| {method} | {group} |")]
            assert row and re.search(r"\| \d+\.\d \[", row[0]), (method, group, table)
    # zero-shot synthesis from a recording of a voice absent from the corpus: a LibriVox reader
    wav, text = librivox_utterances()[1]
    out = tmp_path / "zero-shot.wav"
    monkeypatch.chdir(tmp_path)  # the run's config names its files relative to the workdir
    assert main(["synthesize", "--config", str(run / "config.yaml"),
                 "--checkpoint", str(run / "models/whisper/frozen/heads.pt"),
                 "--text", "He was not an ill disposed young man.", "--prompt-audio", str(wav),
                 "--prompt-text", text, "--method", "vadusa", "--tau", "3",
                 "--out", str(out)]) == 0
    assert sf.info(out).frames > 0  # what a tiny model says is noise, but it is said
