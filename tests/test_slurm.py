"""The SLURM profile: every submitted rule has its resources there, the paper-scale DAG plans
with it, a run through the SLURM executor against stand-in SLURM commands submits what it
asks for; and multi-GPU training relaunches itself under torchrun."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import TOY_MODEL, requires_voices
from test_train_base import tiny_data
from vadusa import cli
from vadusa.checkpoint import load_checkpoint
from vadusa.tokenizers.store import write_meta
from vadusa.training import launch
from vadusa.training.launch import (
    LaunchError,
    torchrun_command,
    torchrun_env,
    training_processes,
)

SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")
PROFILE = Path("profiles") / "slurm"
# every other submitted rule wants a GPU
CPU_RULES = {"prepare_corpus", "corpus_qa", "speaker_embeddings"}
# local rules that run something
LOCAL_COMMANDS = {"table", "table_all", "open_table", "wandb_report", "ablation_table", "listen",
                  "table_zero_shot"}

# Snakemake's own view of the rules (its API, in a process of its own: it changes directory):
# local = `localrule: True` (or a `localrules:` line), or nothing to run (aggregate targets)
LIST_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
snakefile, configfile, workdir = map(Path, sys.argv[1:])
with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(ResourceSettings(cores=1), ConfigSettings(configfiles=[configfile]),
                            snakefile=snakefile, workdir=workdir)._workflow
    print(json.dumps({rule.name: {"local": rule.name in workflow._localrules or rule.norun,
                                  "runs": not rule.norun} for rule in workflow.rules}))
"""


def slurm_snakemake(repo: Path, workdir: Path, *args: str, path: str = "",
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """snakemake with the SLURM profile, as its header says: without the local workflow
    profile (profiles/default), unless ``args`` name one."""
    if "--workflow-profile" not in args:
        args = ("--workflow-profile", "none", *args)
    search = os.pathsep.join(p for p in (path, str(Path(sys.executable).parent),
                                         os.environ["PATH"]) if p)
    return subprocess.run([SNAKEMAKE, "-s", str(repo / "Snakefile"), "-d", str(workdir),
                           "--profile", str(repo / PROFILE), *args], capture_output=True,
                          text=True, env={**os.environ, **(env or {}), "PATH": search})


def profile(repo: Path) -> dict:
    return yaml.safe_load((repo / PROFILE / "config.yaml").read_text())  # aliases resolved


def planned_jobs(out: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of each job a dry run prints."""
    jobs, rule = [], None
    for line in out.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1][:-1]
        elif line.startswith("    resources: ") and rule:
            items = line.removeprefix("    resources: ").split(", ")
            jobs.append((rule, dict(item.split("=", 1) for item in items)))
            rule = None
    return jobs


def test_every_submitted_rule_has_its_resources_in_the_profile(repo: Path,
                                                              tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", LIST_RULES, str(repo / "Snakefile"),
                             str(repo / "config" / "libritts.yaml"), str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    rules = json.loads(result.stdout.strip().splitlines()[-1])
    submitted = {name for name, rule in rules.items() if not rule["local"]}
    assert {name for name, rule in rules.items() if rule["local"] and rule["runs"]} \
        == LOCAL_COMMANDS
    assert CPU_RULES < submitted and "train_base" in submitted
    # a new rule without an entry would run with the CPU defaults, on one thread
    settings = profile(repo)
    assert set(settings["set-resources"]) == submitted
    assert set(settings["set-threads"]) == submitted
    assert settings["default-resources"]["slurm_partition"] == "cpu"
    for name in submitted:
        resources = settings["set-resources"][name]
        assert resources["mem_mb"] >= 8000 and resources["runtime"] >= 120, name
        assert settings["set-threads"][name] >= 4, name
        if name in CPU_RULES:
            assert "slurm_partition" not in resources and "gres" not in resources, name
        else:
            assert resources["slurm_partition"] == "gpu", name
            assert resources["gres"] == "gpu:1", name


@pytest.mark.parametrize("workflow_profile", ["none", "default"])
def test_reproduce_all_plans_on_libritts_with_the_slurm_profile(
        repo: Path, tmp_path: Path, workflow_profile: str) -> None:
    # "default": the short command, with the local profile on top; it plans all the same
    result = slurm_snakemake(repo, tmp_path, "reproduce_all", "-n", "--workflow-profile",
                             workflow_profile, "--configfile",
                             str(repo / "config" / "libritts.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout + result.stderr)
    counts: dict[str, int] = {}
    for rule, resources in jobs:
        counts[rule] = counts.get(rule, 0) + 1
        if rule in CPU_RULES or rule in LOCAL_COMMANDS or rule == "reproduce_all":
            assert resources["slurm_partition"] == "cpu" and "gres" not in resources, rule
        else:
            assert resources["slurm_partition"] == "gpu", rule
            assert resources["gres"] == "gpu:1", rule
    assert counts["prepare_corpus"] == 1 and counts["train_base"] == 4  # tokens.families
    assert counts["evaluate_open"] == 28 and counts["table_all"] == 1
    assert counts["train_nar"] == 2  # the acoustic families', on a GPU
    assert (tmp_path / "results" / "libritts" / "config.yaml").is_file()  # not in the repo


def test_training_processes_follow_the_gpus_of_a_slurm_job() -> None:
    def gpus(n: int):  # noqa: ANN202
        return lambda: n

    def never() -> int:
        raise AssertionError("no GPU count needed here")

    slurm = {"SLURM_JOB_ID": "17"}
    assert training_processes(slurm, "auto", gpus(4)) == 4
    assert training_processes(slurm, "cuda", gpus(1)) == 1
    assert training_processes(slurm, "auto", gpus(0)) == 1  # a CPU node
    assert training_processes(slurm, "cpu", never) == 1
    # a workstation's GPUs are shared by the jobs Snakemake runs side by side
    assert training_processes({}, "auto", never) == 1
    # a torchrun worker never launches again
    assert training_processes({**slurm, "WORLD_SIZE": "4"}, "auto", never) == 1
    # asked for explicitly: wins, on CPUs too (gloo)
    assert training_processes({launch.PROCESSES_ENV: "2"}, "cpu", never) == 2
    assert training_processes({**slurm, launch.PROCESSES_ENV: "1"}, "auto", never) == 1
    for bad in ("0", "two", "-1"):
        with pytest.raises(LaunchError, match=launch.PROCESSES_ENV):
            training_processes({launch.PROCESSES_ENV: bad}, "auto", never)


def test_torchrun_command_and_its_threads() -> None:
    argv = ["train-base", "--family", "whisper", "--out", "m"]
    assert torchrun_command(4, argv) == [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=4",
        "-m", "vadusa.cli", *argv]
    # Snakemake's OMP_NUM_THREADS (the job's threads) shared by the workers
    assert torchrun_env({"OMP_NUM_THREADS": "8", "A": "b"}, 4) == {"OMP_NUM_THREADS": "2",
                                                                 "A": "b"}
    assert torchrun_env({"OMP_NUM_THREADS": "2"}, 4)["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in torchrun_env({}, 4)


class Relaunched(Exception):
    pass


@pytest.mark.parametrize("command", ["train-base", "train-draft"])
def test_train_commands_relaunch_under_torchrun_in_a_multi_gpu_job(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str) -> None:
    calls = []

    def execve(path: str, args: list[str], env: dict[str, str]) -> None:
        calls.append((path, args, env))
        raise Relaunched

    monkeypatch.setattr(launch.os, "execve", execve)
    monkeypatch.setattr(launch, "_cuda_device_count", lambda: 2)
    monkeypatch.setenv("SLURM_JOB_ID", "17")
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv(launch.PROCESSES_ENV, raising=False)
    argv = [command, "--set", f"results_dir={tmp_path}", "--family", "whisper",
            "--out", str(tmp_path / "m")]
    with pytest.raises(Relaunched):
        cli.main(argv)
    [(path, args, env)] = calls
    assert path == sys.executable and args == torchrun_command(2, argv)
    assert env["OMP_NUM_THREADS"] == "4" and env["SLURM_JOB_ID"] == "17"
    # on device: cpu, the job's GPUs are not the model's
    calls.clear()
    monkeypatch.setattr(cli, "COMMANDS", {**cli.COMMANDS, command: lambda cfg, args: 0})
    assert cli.main([*argv, "--set", "device=cpu"]) == 0 and not calls
    monkeypatch.setenv(launch.PROCESSES_ENV, "zero")
    assert cli.main(argv) == 2 and not calls  # a user error, one line


@pytest.mark.slow
def test_train_base_relaunched_trains_with_two_processes(tmp_path: Path) -> None:
    """The whole relaunch: `vadusa train-base` execs torchrun, two gloo processes train."""
    corpus, tokens = tiny_data(tmp_path)
    write_meta(tokens, {"family": "whisper", "vocab_size": 16, "frame_rate": 10.0})
    sets = [f"results_dir={tmp_path}", "tracking.backend=none", *TOY_MODEL, "model.dim=32",
            "model.layers=2", "model.heads=2", "model.max_seq=256",
            "model.prompt_max_seconds=5.0", "train.steps=6", "train.batch_tokens=600",
            "train.warmup_steps=2", "train.checkpoint_every=6", "train.eval_every=6",
            "device=cpu"]
    cmd = [sys.executable, "-m", "vadusa.cli", "train-base", "--family", "whisper",
           "--corpus", str(corpus), "--tokens", str(tokens), "--out", str(tmp_path / "m"),
           *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, launch.PROCESSES_ENV: "2", "OMP_NUM_THREADS": "2"}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[train-base] 2 processes:" in result.stdout
    blob = load_checkpoint(tmp_path / "m" / "base.pt", kind="tts")
    assert blob["meta"]["processes"] == 2
    assert np.isfinite(blob["meta"]["dev"]["dev/loss"])


STANDIN_COMMANDS = ("sbatch", "squeue", "sacct", "srun", "scancel", "sacctmgr", "sinfo",
                    "scontrol")


def slurm_standins(bin_dir: Path) -> None:
    """SLURM's commands as shell scripts calling tests/slurm_standin.py."""
    standin = Path(__file__).with_name("slurm_standin.py")
    bin_dir.mkdir()
    for name in STANDIN_COMMANDS:
        path = bin_dir / name
        path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{standin}" {name} "$@"\n')
        path.chmod(0o755)


def options(argv: list[str]) -> dict[str, str]:
    """sbatch's options: `--name=value`, `-x value` / `--name value`, or a bare flag."""
    out = {}
    for i, arg in enumerate(argv):
        if not arg.startswith("-"):
            continue
        if "=" in arg:
            key, value = arg.split("=", 1)
        elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            key, value = arg, argv[i + 1]
        else:
            key, value = arg, ""
        out[key] = value
    return out


@requires_voices
@pytest.mark.slow
def test_slurm_executor_submits_what_the_profile_asks(repo: Path, tmp_path: Path) -> None:
    """The tiny corpus (a CPU rule) and the tiny codec (a GPU rule) through the SLURM executor:
    sbatch gets each rule's partition, GPUs, CPUs, memory and time from the profile."""
    slurm_standins(tmp_path / "bin")
    state = tmp_path / "slurm"
    state.mkdir()
    workdir = tmp_path / "work"
    workdir.mkdir()
    codec = "results/tiny/tokens/encodec/codec/codec.pt"
    result = slurm_snakemake(repo, workdir, codec, "--configfile",
                             str(repo / "config" / "tiny.yaml"), "--retries", "0",
                             "--slurm-init-seconds-before-status-checks", "1",
                             "--seconds-between-status-checks", "1",
                             "--slurm-keep-successful-logs",
                             path=str(tmp_path / "bin"), env={"STANDIN_SLURM_DIR": str(state)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (workdir / codec).is_file()
    assert (workdir / "results/tiny/corpus/manifests/train.jsonl.gz").is_file()

    settings = profile(repo)
    submitted = [json.loads(line) for line in (state / "sbatch.jsonl").read_text().splitlines()]
    by_rule = {options(s["argv"])["--comment"].removeprefix("rule_"): s for s in submitted}
    assert len(submitted) == len(by_rule) == 2 and set(by_rule) == {"prepare_corpus",
                                                                    "train_codec"}
    for rule, job in by_rule.items():
        opts = options(job["argv"])
        resources = settings["set-resources"][rule]
        assert "--parsable" in opts and opts["-A"] == "vadusa_test"  # the guessed account
        assert opts["--mem"] == str(resources["mem_mb"])
        assert opts["-t"] == str(resources["runtime"])
        # threads are the CPU request: --cores in the job would cap them (hence no local
        # workflow profile, whose `cores: 2` Snakemake passes to every job)
        assert opts["--cpus-per-task"] == str(settings["set-threads"][rule])
        assert opts["-D"] == str(workdir.resolve())
        assert re.search(r"--cores '?all'? ", job["script"])  # the job's own CPUs, no cap
        assert "--executor slurm-jobstep" in job["script"]
        # the job step: one srun with the job's CPUs (as many as `--cores all` finds: in a
        # SLURM job its allocation, here this machine's), running the rule's job
        [step] = [json.loads(line) for line in (state / "srun.jsonl").read_text().splitlines()
                  if json.loads(line)["job"] == str(job["job"])]
        cpus = min(settings["set-threads"][rule], len(os.sched_getaffinity(0)))
        assert f"--cpus-per-task={cpus}" in step["options"]
        assert step["command"][1:3] == ["-m", "snakemake"]
        assert json.loads((state / f"{job['job']}.json").read_text())["state"] == "COMPLETED"
    cpu, gpu = options(by_rule["prepare_corpus"]["argv"]), options(by_rule["train_codec"]["argv"])
    assert cpu["-p"] == "cpu" and "--gres" not in cpu and cpu["--ntasks"] == "1"
    assert gpu["-p"] == "gpu" and gpu["--gres"] == "gpu:1"
    assert (workdir / "results/tiny/logs/train_codec.log").is_file()
