"""Multi-GPU training inside one job: ``vadusa train-base`` and ``vadusa train-draft`` relaunch
themselves under torchrun (``python -m torch.distributed.run --standalone``, one DDP process
per GPU; ``training.tts.Distributed``) when the job was given several GPUs.

The launch is decided here rather than in the Snakemake rule: a changed shell command re-runs
every model already trained (Snakemake's ``code`` rerun trigger), and the GPU count belongs
to the job (the SLURM profile's ``gres``), not to the rule.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence

PROCESSES_ENV = "VADUSA_TRAIN_PROCESSES"


class LaunchError(ValueError):
    pass


def training_processes(env: Mapping[str, str], device: str,
                       cuda_devices: Callable[[], int]) -> int:
    """How many DDP processes a training command should run.

    1 inside torchrun already (``WORLD_SIZE`` set). ``VADUSA_TRAIN_PROCESSES`` when set (on
    CPUs too, with gloo). Else, inside a SLURM job (``SLURM_JOB_ID``) and not on ``device:
    cpu``, the GPUs the job sees (SLURM's CUDA_VISIBLE_DEVICES: those it asked for). Elsewhere 1:
    on a workstation the GPUs are shared by the jobs Snakemake runs side by side."""
    if "WORLD_SIZE" in env:
        return 1
    asked = env.get(PROCESSES_ENV, "").strip()
    if asked:
        if not asked.isdigit() or int(asked) < 1:
            raise LaunchError(f"{PROCESSES_ENV}={asked!r}: give a number of processes >= 1")
        return int(asked)
    if "SLURM_JOB_ID" in env and device != "cpu":
        return max(1, cuda_devices())
    return 1


def torchrun_command(processes: int, argv: Sequence[str]) -> list[str]:
    """The same ``vadusa`` command under torchrun. ``--standalone``: a rendezvous on a free
    local port, so two such jobs on one node do not collide."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={processes}", "-m", "vadusa.cli", *argv]


def torchrun_env(env: Mapping[str, str], processes: int) -> dict[str, str]:
    """The workers' environment: Snakemake sets OMP_NUM_THREADS to the job's threads, which
    ``processes`` workers would each take; they share them instead."""
    out = dict(env)
    threads = out.get("OMP_NUM_THREADS", "")
    if threads.isdigit():
        out["OMP_NUM_THREADS"] = str(max(1, int(threads) // processes))
    return out


def _cuda_device_count() -> int:
    import torch  # noqa: PLC0415

    return torch.cuda.device_count()


def relaunch_under_torchrun(command: str, argv: Sequence[str], device: str) -> None:
    """Replace this process with torchrun running ``argv`` when more than one process is due
    (see ``training_processes``); return without doing anything otherwise."""
    env = os.environ
    processes = training_processes(env, device, _cuda_device_count)
    if processes == 1:
        return
    cmd = torchrun_command(processes, argv)
    print(f"[{command}] {processes} processes: {' '.join(cmd)}", flush=True)
    sys.stderr.flush()
    os.execve(cmd[0], cmd, torchrun_env(env, processes))
