"""An Optuna study with two objectives, (speedup, WER), that survives its workers.

Storage: SQLite in the sweep's directory by default; ``journal:PATH`` for an Optuna journal
file that several worker processes (or nodes on a shared file system) write at once; any RDB
URL for a database server. Every worker runs ``run_study`` on the same study name until the
study holds ``trials`` completed trials, however many workers share it.

Resuming: a worker that dies mid-trial leaves its trial RUNNING forever. Each trial records
the host and process that runs it, so a new worker on the same host can tell a dead worker's
trial from a live one's: ``reclaim_stale`` marks it FAIL and queues its parameters again, so no
trial is lost and the sampler's plan continues. (Trials of other hosts are left alone: their
process cannot be checked from here.)
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from vadusa.config import SweepConfig

DIRECTIONS = ("maximize", "minimize")  # speedup, WER
OBJECTIVES = ("speedup", "wer")


class SweepError(ValueError):
    pass


def open_storage(spec: str, out_dir: Path) -> optuna.storages.BaseStorage | str:
    """``""`` -> SQLite file ``out_dir/study.db``; ``journal:PATH`` -> journal file; a URL ->
    that database."""
    if not spec:
        out_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(out_dir / 'study.db').resolve()}"
    if spec.startswith("journal:"):
        path = Path(spec.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(
            str(path), lock_obj=optuna.storages.journal.JournalFileOpenLock(str(path)))
        return optuna.storages.JournalStorage(backend)
    if "://" in spec:
        return spec
    raise SweepError(f"sweep.storage {spec!r}: use '' (SQLite in the output directory), "
                     "'journal:PATH' or a database URL such as postgresql://host/db")


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        # multivariate: tau, heads and tree size act together on the accepted length
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SweepError(f"unknown sweep.sampler {name!r}: tpe, nsga2 or random")


def open_study(name: str, storage: optuna.storages.BaseStorage | str, sampler: str = "tpe",
               seed: int = 0) -> optuna.Study:
    """Create the study, or load it if it exists (resume, or another worker's)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                directions=list(DIRECTIONS), sampler=make_sampler(sampler, seed))
    with warnings.catch_warnings():  # "experimental" in Optuna 5; the names go in the CSVs
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(OBJECTIVES))
    return study


def search_space(sweep: SweepConfig, trained_heads: int, temperature: float, top_k: int
                 ) -> dict[str, list[Any]]:
    """Every parameter's choices (a list of one value is fixed, not searched)."""
    heads = list(sweep.heads) or list(range(1, trained_heads + 1))
    too_many = [k for k in heads if k > trained_heads]
    if too_many:
        raise SweepError(f"sweep.heads {too_many} exceed the {trained_heads} heads the "
                         f"checkpoint has; use at most {trained_heads}")
    return {"tau": list(range(1, sweep.tau_max + 1)), "heads": heads,
            "tree": list(sweep.trees),
            "temperature": list(sweep.temperatures) or [temperature],
            "top_k": list(sweep.top_ks) or [top_k]}


def suggest(trial: optuna.Trial, space: dict[str, list[Any]]) -> dict[str, Any]:
    params = {}
    for name, choices in space.items():
        if name in ("tau", "heads") and len(choices) > 1 and choices == list(
                range(choices[0], choices[-1] + 1)):  # ordered: the sampler may use the order
            params[name] = trial.suggest_int(name, choices[0], choices[-1])
        else:
            params[name] = trial.suggest_categorical(name, choices)
    return params


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def reclaim_stale(study: optuna.Study) -> int:
    """Fail the RUNNING trials of dead workers of this host and queue their parameters again;
    returns how many."""
    host, reclaimed = socket.gethostname(), 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get("worker", ""))
        trial_host, _, pid = worker.rpartition(":")
        if trial_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number},
                                skip_if_exists=False)
        reclaimed += 1
    return reclaimed


def completed(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def run_study(study: optuna.Study, objective: Callable[[dict[str, Any]], dict[str, float]],
              space: dict[str, list[Any]], trials: int,
              on_trial: Callable[[optuna.Study], None] | None = None) -> int:
    """Run trials until the study has ``trials`` completed ones; returns how many this worker
    completed. ``objective(params)`` returns ``speedup`` and ``wer`` and any other figures
    (kept as the trial's user attributes)."""
    reclaim_stale(study)
    done_here, failed_in_a_row = 0, 0

    def run_one(trial: optuna.Trial) -> tuple[float, float]:
        nonlocal done_here
        trial.set_user_attr("worker", worker_id())
        try:
            figures = objective(suggest(trial, space))
        except SweepTrialError as err:
            trial.set_user_attr("error", str(err))
            raise
        for key, value in figures.items():
            trial.set_user_attr(key, value)
        done_here += 1
        return figures["speedup"], figures["wer"]

    while completed(study) < trials:
        before = done_here
        # one trial per call, so the count is checked again between trials (other workers
        # complete trials of the same study meanwhile)
        study.optimize(run_one, n_trials=1, catch=(SweepTrialError,))
        failed_in_a_row = 0 if done_here > before else failed_in_a_row + 1
        if failed_in_a_row >= MAX_FAILURES_IN_A_ROW:
            raise SweepError(f"{failed_in_a_row} trials in a row failed; the last: "
                             f"{study.trials[-1].user_attrs.get('error', '?')}")
        if on_trial is not None:
            on_trial(study)
    return done_here


MAX_FAILURES_IN_A_ROW = 5


class SweepTrialError(RuntimeError):
    """A trial that failed on its own (recorded as FAIL; the study goes on)."""
