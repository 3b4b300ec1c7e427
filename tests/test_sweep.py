"""The sweep's study: storage, resume after a killed worker, two workers on one study, the
Pareto front and the chosen setting. A toy objective stands in for decoding (the DAG's smoke
run sweeps a real tiny model)."""

from __future__ import annotations

import csv
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from vadusa.config import SweepConfig, load_config
from vadusa.sweep.report import choose, pareto_front, write_report
from vadusa.sweep.study import (
    SweepError,
    completed,
    open_storage,
    open_study,
    run_study,
    search_space,
)

SPACE = {"tau": [1, 2, 3, 4], "heads": [1, 2], "tree": [4, 8, 16], "temperature": [0.7],
         "top_k": [0]}


def toy(params: dict) -> dict:
    """Faster with more tau and bigger trees; WER grows with tau. Deterministic."""
    speedup = 1.0 + 0.3 * params["tau"] + 0.01 * params["tree"] + 0.1 * params["heads"]
    return {"speedup": speedup, "wer": 0.3 + 0.02 * params["tau"] ** 2, "ar_wer": 0.3,
            "mean_accepted": 1.0 + params["heads"], "ms_per_forward": 3.0 + params["tree"] / 8,
            "ar_ms_per_forward": 3.0}


WORKER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from vadusa.sweep.study import open_storage, open_study, run_study
    storage, trials, die_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    study = open_study("s", open_storage(storage, Path(sys.argv[4])), "random", os.getpid())
    space = {"tau": [1, 2, 3, 4], "heads": [1, 2], "tree": [4, 8, 16], "temperature": [0.7],
             "top_k": [0]}
    count = 0
    def objective(params):
        global count
        count += 1
        if count == die_at:
            os._exit(9)  # killed mid-trial: the trial stays RUNNING in the storage
        time.sleep(0.05)
        return {"speedup": 1.0 + params["tau"], "wer": 0.1 * params["tau"], "ar_wer": 0.2}
    print(run_study(study, objective, space, trials))
""")


def worker(storage: str, out: Path, trials: int, die_at: int = 0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, storage, str(trials), str(die_at),
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_study_runs_to_the_requested_completed_trials_and_reruns_nothing(tmp_path: Path) -> None:
    study = open_study("s", open_storage("", tmp_path), "tpe", 0)
    assert run_study(study, toy, SPACE, 5) == 5
    again = open_study("s", open_storage("", tmp_path), "tpe", 0)  # reopened from SQLite
    assert completed(again) == 5
    assert run_study(again, toy, SPACE, 5) == 0  # finished: nothing to do
    assert run_study(again, toy, SPACE, 7) == 2  # asked for more: only the difference
    assert (tmp_path / "study.db").is_file()


@pytest.mark.parametrize("storage", ["", "journal"])
def test_a_killed_worker_loses_no_trial(tmp_path: Path, storage: str) -> None:
    spec = f"journal:{tmp_path / 'study.log'}" if storage else ""
    dead = worker(spec, tmp_path, 6, die_at=3)
    dead.communicate(timeout=120)
    assert dead.returncode == 9
    study = open_study("s", open_storage(spec, tmp_path), "random", 1)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    lost = study.trials[2].params

    assert run_study(study, toy, SPACE, 6) == 4  # resumes: 2 done before, 4 now
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 6
    assert states[2] == TrialState.FAIL  # the dead worker's trial, closed
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == 2]
    assert len(retried) == 1 and retried[0].params == lost  # and run again, same parameters
    assert retried[0].state == TrialState.COMPLETE


def test_two_workers_share_one_study(tmp_path: Path) -> None:
    spec = f"journal:{tmp_path / 'study.log'}"
    open_study("s", open_storage(spec, tmp_path), "random", 0)  # created once, then shared
    procs = [worker(spec, tmp_path, 10) for _ in range(2)]
    ran = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-2000:]
        ran.append(int(out.strip().splitlines()[-1]))
    study = open_study("s", open_storage(spec, tmp_path), "random", 0)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    # each worker checks the count before each trial: the last round may add one extra
    assert 10 <= len(done) <= 11 and sum(ran) == len(done)
    workers = {t.user_attrs["worker"] for t in done}
    assert len(workers) == 2 and all(n >= 1 for n in ran)


def test_a_trial_that_fails_on_its_own_is_recorded_and_the_study_goes_on(
        tmp_path: Path) -> None:
    from vadusa.sweep.study import SweepTrialError

    def sometimes(params: dict) -> dict:
        if params["tree"] == 16 and params["heads"] == 2:
            raise SweepTrialError("tree 16 is too deep for 2 heads in this test")
        return toy(params)

    study = open_study("s", open_storage("", tmp_path), "random", 3)
    run_study(study, sometimes, SPACE, 6)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert completed(study) == 6 and failed
    assert all(t.params["tree"] == 16 and t.params["heads"] == 2
               and "too deep" in t.user_attrs["error"] for t in failed)

    def always(params: dict) -> dict:
        raise SweepTrialError("broken")

    with pytest.raises(SweepError, match="5 trials in a row failed"):
        run_study(study, always, SPACE, 10)


def _trial(number: int, speedup: float, wer: float,
           ar_wer: float = 0.3) -> optuna.trial.FrozenTrial:
    distributions = {"tau": IntDistribution(1, 4), "heads": IntDistribution(1, 2),
                     "tree": CategoricalDistribution([4, 8, 16]),
                     "temperature": CategoricalDistribution([0.7]),
                     "top_k": CategoricalDistribution([0])}
    trial = create_trial(params={"tau": 1 + number % 4, "heads": 2, "tree": 8,
                                 "temperature": 0.7, "top_k": 0},
                         distributions=distributions, values=[speedup, wer],
                         user_attrs={"ar_wer": ar_wer})
    trial.number = number
    return trial


def test_pareto_front_and_the_chosen_trial() -> None:
    trials = [_trial(0, 1.5, 0.30), _trial(1, 2.0, 0.31), _trial(2, 1.8, 0.35),  # 2: dominated
              _trial(3, 2.5, 0.40), _trial(4, 1.2, 0.25), _trial(5, 2.0, 0.33)]  # 5: by 1
    front = pareto_front(trials)
    assert [t.number for t in front] == [3, 1, 0, 4]  # fastest first
    # allowed: WER <= AR's 0.30 + 0.02 -> trials 1, 0, 4; the fastest of them is 1
    assert choose(front, 0.02).number == 1
    assert choose(front, 0.2).number == 3  # a looser allowance takes the fastest
    strict = [_trial(0, 1.5, 0.30, ar_wer=0.1), _trial(1, 2.0, 0.35, ar_wer=0.1)]
    assert choose(pareto_front(strict), 0.0).number == 0  # none allowed: the lowest WER


def test_report_files_and_chosen_setting_is_a_config_the_decoder_reads(tmp_path: Path) -> None:
    study = open_study("s", open_storage("", tmp_path), "tpe", 0)
    run_study(study, toy, SPACE, 8)
    summary = write_report(study, SweepConfig(), tmp_path, judge="whisper-tiny.en")
    assert summary["trials"]["complete"] == 8
    # the setting says where it was chosen: on dev (sweep.split), by the fast judge
    assert "# chosen on the dev split, judged by whisper-tiny.en\n" in (
        tmp_path / "chosen.yaml").read_text()
    for name in ("trials.csv", "pareto.csv", "chosen.yaml", "pareto.png", "tau.png",
                 "heads.png", "tree.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = list(csv.DictReader(open(tmp_path / "trials.csv")))
    assert len(rows) == 8 and {"tau", "heads", "tree", "speedup", "wer"} <= set(rows[0])
    pareto = list(csv.DictReader(open(tmp_path / "pareto.csv")))
    assert [int(r["number"]) for r in pareto] == [t.number for t in pareto_front(study.trials)]
    cfg = load_config([tmp_path / "chosen.yaml"])  # schema-validated like any config file
    chosen = yaml.safe_load((tmp_path / "chosen.yaml").read_text())["decoding"]
    assert cfg.decoding.method == "vadusa" and cfg.decoding.tau == chosen["tau"]
    # the toy's WER is AR's + 0.02 tau^2 - 0.02 allowance: only tau 1 qualifies
    assert chosen["tau"] == 1


def test_bad_settings_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="journal:PATH"):
        open_storage("study.db", tmp_path)
    with pytest.raises(SweepError, match="exceed the 2 heads"):
        search_space(SweepConfig(heads=(2, 4)), 2, 0.7, 0)
    space = search_space(SweepConfig(), 3, 0.7, 0)
    assert space["heads"] == [1, 2, 3] and space["temperature"] == [0.7]


def test_a_trial_counts_an_utterance_that_failed_as_all_words_deleted() -> None:
    """The objective's quality: nothing decoded, or tokens the vocoder refuses, count as every
    word deleted (as in evaluation), and the trial says how many failed. The decoder is not
    needed for this bookkeeping: the objective is built around a stand-in vocoder and judge."""
    import numpy as np  # noqa: PLC0415

    from vadusa.decoding.run import Request  # noqa: PLC0415
    from vadusa.sweep.objective import DecodingObjective  # noqa: PLC0415
    from vadusa.vocoder import VocoderError  # noqa: PLC0415

    class Vocoder:
        def decode(self, codes: np.ndarray, voice: object) -> tuple[np.ndarray, int]:
            if codes[0] == 9:
                raise VocoderError("unit 9 out of range")
            return np.zeros(160, dtype=np.float32), 16000

    class Judge:
        name = "echo"

        def transcribe(self, wave: np.ndarray, rate: int) -> str:
            return "one two"

    objective = DecodingObjective.__new__(DecodingObjective)  # no model: rates() alone
    objective.vocoder, objective.judge, objective.nar, objective.voices = (
        Vocoder(), Judge(), None, None)
    objective._transcripts = {}
    objective.requests = [Request(0, "one two", None), Request(1, "three four five", None),
                          Request(2, "six seven", None)]
    wer, _, failed = objective.rates([[1, 2], [9, 9], []])
    assert failed == 2 and wer == pytest.approx(5 / 7)  # 3 + 2 words deleted of 7
    assert objective.rates([[1, 2], [1], [1]])[2] == 0
