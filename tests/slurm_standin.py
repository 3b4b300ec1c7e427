"""Stand-ins for SLURM's commands, for tests/test_slurm.py: `python slurm_standin.py NAME ARGS`
answers as SLURM's NAME would, as far as snakemake-executor-plugin-slurm 2.8 asks.

sbatch records its arguments and job script, starts the job in the background (as SLURM runs
it: `sh` on the script, in the -D directory, output to --output) and prints the job id
(--parsable); sacct and squeue report each job as RUNNING, then COMPLETED or FAILED by its
exit status; srun records its options and runs its command; scancel kills the job; sacctmgr,
sinfo and scontrol give the account, partitions and settings the plugin looks up. Everything
lives in $STANDIN_SLURM_DIR (not SLURM_...: the plugin's job step drops those for srun):
sbatch.jsonl, srun.jsonl, and one <jobid>.json per job.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ["STANDIN_SLURM_DIR"])
ACCOUNT = "vadusa_test"


def append(name: str, record: dict) -> None:
    with open(STATE / f"{name}.jsonl", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # the plugin submits from two threads at once
        f.write(json.dumps(record) + "\n")


def option(argv: list[str], *names: str) -> str | None:
    """The value of an option given as `--name=value` or `--name value`."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg[len(name) + 1:]
    return None


def next_job_id() -> int:
    with open(STATE / "last_job_id", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        job = int(f.read() or "1000") + 1
        f.seek(0)
        f.truncate()
        f.write(str(job))
    return job


def job_file(job: int | str) -> Path:
    return STATE / f"{job}.json"


def update_job(job: int | str, **fields: object) -> None:
    path = job_file(job)
    record = json.loads(path.read_text()) if path.exists() else {}
    record.update(fields)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(path)  # sacct never reads half a file


def sbatch(argv: list[str]) -> int:
    job = next_job_id()
    wrap = option(argv, "--wrap")
    script = wrap if wrap is not None else sys.stdin.read()  # `sbatch ... /dev/stdin`
    append("sbatch", {"job": job, "argv": argv, "script": script})
    path = STATE / f"{job}.sh"
    path.write_text(f"#!/bin/sh\n{script}\n")
    update_job(job, name=option(argv, "--job-name"), state="RUNNING")
    output = Path((option(argv, "--output") or f"slurm-{job}.out").replace("%j", str(job)))
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w") as log:
        # a session of its own (scancel kills the whole group); stdout not sbatch's, whose end
        # the plugin waits for
        runner = subprocess.Popen([sys.executable, __file__, "run-job", str(job)],
                                  cwd=option(argv, "-D", "--chdir"), stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    update_job(job, pid=runner.pid)
    print(job)
    return 0


def run_job(job: str) -> int:
    env = {**os.environ, "SLURM_JOB_ID": job, "SLURM_JOBID": job}
    status = subprocess.call(["sh", str(STATE / f"{job}.sh")], env=env)
    update_job(job, state="COMPLETED" if status == 0 else "FAILED", exit_status=status)
    return status


def states(argv: list[str]) -> int:
    """`sacct ... --format=JobIdRaw,State --name RUN` and `squeue --format=%i|%T --name RUN`:
    one `id|STATE` line per job of the run."""
    name = option(argv, "--name")
    for path in sorted(STATE.glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("name") == name:
            print(f"{path.stem}|{record['state']}")
    return 0


def sacct(argv: list[str]) -> int:
    if any(arg.startswith("--format=JobIdRaw,State") for arg in argv):
        return states(argv)
    if "Account%256" in argv:  # `sacct -nu USER -o Account%256`: the account of recent jobs
        print(ACCOUNT)
    return 0  # a failed job's reason or node: none


def srun(argv: list[str]) -> int:
    command = list(argv)
    options = []
    while command and command[0].startswith("-"):  # the jobstep writes `--opt=value` only
        options.append(command.pop(0))
    append("srun", {"job": os.environ.get("SLURM_JOB_ID"), "options": options,
                    "command": command})
    os.execvp(command[0], command)
    return 127  # not reached


def scancel(argv: list[str]) -> int:
    for job in (arg for arg in argv if arg.isdigit()):
        if job_file(job).exists():
            record = json.loads(job_file(job).read_text())
            try:
                os.killpg(record["pid"], signal.SIGTERM)
            except (KeyError, ProcessLookupError):
                pass
            update_job(job, state="CANCELLED")
    return 0


def main(argv: list[str]) -> int:
    name, args = argv[0], argv[1:]
    if name == "sbatch":
        return sbatch(args)
    if name == "run-job":
        return run_job(args[0])
    if name == "sacct":
        return sacct(args)
    if name == "squeue":
        return states(args)
    if name == "srun":
        return srun(args)
    if name == "scancel":
        return scancel(args)
    if name == "sacctmgr":  # `sacctmgr -n -s list user USER format=account%256`
        print(ACCOUNT)
        return 0
    if name == "sinfo":  # `sinfo -o %P`: the partitions, the default one starred
        print("PARTITION\ncpu*\ngpu")
        return 0
    if name == "scontrol":  # `scontrol show config`: the settings the plugin reads
        print("MaxArraySize            = 1001\nMinJobAge               = 300 sec")
        return 0
    print(f"slurm_standin: no stand-in for {name}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
