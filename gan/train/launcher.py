"""Start, watch, stop and resume training runs as separate processes (used by the app's Train page).

A run started here is `python -m gan train ...` in its own process session, so it outlives the
page (and the app) that started it. Its pid, start time and command line are kept in
`RUN/process.json` and its output in `RUN/train.log`; the run folder stays the single source of
truth for progress. Process ids are reused, so a pid counts as the run's only while the process
with it started when the run's did (Linux's /proc; elsewhere, while the pid is alive).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gan.errors import GanError
from gan.train.run import LOG_FILE, PROCESS_FILE, RunFolder, TrainingPlan, checkpoint_step, validate_run_name

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class PhaseProgress:
    phase: str  # "pretrain" or "finetune"
    step: int
    total_steps: int


@dataclass
class RunStatus:
    name: str
    path: Path
    state: str  # "starting", "running", "finished", "stopped" or "failed"
    phase: str | None
    step: int
    total_steps: int
    img_per_s: float | None
    latest_sample: Path | None
    phases: list[PhaseProgress] = field(default_factory=list)  # each planned phase's own step count

    @property
    def progress(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A finished child of this process stays a zombie until reaped: reap it so it reads as gone.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _start_time(pid: int) -> str | None:
    """When a process started (clock ticks after boot, field 22 of /proc/PID/stat), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # after the command name, which may hold spaces


def _command_of(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return None


def record_process(run_dir: Path, pid: int, command: list[str]) -> None:
    """Write `process.json`: who trains the run, so that Stop signals that process and no other."""
    record = {"pid": pid, "start_time": _start_time(pid), "started": time.time(), "command": command}
    (run_dir / PROCESS_FILE).write_text(json.dumps(record))


def running_pid(run_dir: Path) -> int | None:
    """The pid of the run's training process while it runs; None once it has ended (its pid may since
    belong to another process)."""
    try:
        record = json.loads((run_dir / PROCESS_FILE).read_text())
        pid = int(record["pid"])
    except (FileNotFoundError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
    if not _alive(pid):
        return None
    if record.get("start_time") is not None:
        return pid if _start_time(pid) == record["start_time"] else None
    command = _command_of(pid)  # a record from before start times were kept
    return pid if command is None or command == record.get("command") else None


def launch(runs_dir: Path, name: str, train_args: list[str], resume: bool = False) -> subprocess.Popen:
    """Start `python -m gan train --out runs_dir/name ...` detached from the caller."""
    validate_run_name(name)
    run_dir = runs_dir / name
    if resume and not (run_dir / "config.json").is_file():
        raise GanError(f"run {name!r} has nothing to resume")
    if running_pid(run_dir) is not None:
        raise GanError(f"run {name!r} is already running")
    if not resume:
        try:  # a new name, or a run that never trained a step (it failed on its data, say)
            RunFolder(run_dir).check_can_start()
        except GanError:
            raise GanError(f"run {name!r} already exists: choose another name or resume it") from None
    run_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "gan", "train", "--out", str(run_dir), "--no-progress"]
    command += ["--resume", *train_args] if resume else train_args  # e.g. --steps N: train a run for longer
    log = open(run_dir / LOG_FILE, "a", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=PROJECT_ROOT, env=env, start_new_session=True)
    log.close()
    record_process(run_dir, process.pid, command)
    return process


def stop(run_dir: Path, timeout: float = 30.0) -> bool:
    """Ask a running run to stop (SIGTERM: it finishes its step and checkpoints it); True if it was running."""
    pid = running_pid(run_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    return True


def run_status(run_dir: Path) -> RunStatus | None:
    """What a run folder says about its progress; None if it is not a run folder."""
    run = RunFolder(run_dir)
    try:
        plan: TrainingPlan = run.load_plan()
    except GanError:
        return _unplanned_status(run_dir)
    total = sum(p.train.steps for _, p in plan.phases())
    rows = run.read_metrics()
    done_before = {"pretrain": 0, "finetune": plan.pretrain.train.steps if plan.pretrain else 0}
    last = next((r for r in reversed(rows) if r.get("kind") != "eval"), None)  # eval rows carry no speed
    step = done_before[last["phase"]] + last["step"] if last else 0
    samples = sorted(run.samples_dir.glob("*.png"), key=lambda p: (p.name.startswith("finetune"), p.name)) \
        if run.samples_dir.is_dir() else []
    saved = {phase: [checkpoint_step(c) for c in run.checkpoints(phase)] for phase, _ in plan.phases()}
    finished_phases = [phase for phase, p in plan.phases() if saved[phase] and saved[phase][-1] == p.train.steps]
    if running_pid(run_dir) is not None:
        state = "running"
    elif len(finished_phases) == len(plan.phases()):
        state = "finished"
    elif _log_has_error(run_dir):
        state = "failed"
    else:
        state = "stopped"
    phases = []
    for phase, phase_plan in plan.phases():
        logged = [r["step"] for r in rows if r.get("phase") == phase]  # read_metrics keeps integer steps only
        phases.append(PhaseProgress(phase, max(logged + saved[phase], default=0), phase_plan.train.steps))
    return RunStatus(run.path.name, run.path, state, last["phase"] if last else None, step, total,
                     last.get("img_per_s") if last else None, samples[-1] if samples else None, phases)


def _unplanned_status(run_dir: Path) -> RunStatus | None:
    """A run launched a moment ago (its process has not written config.json yet), or one that failed
    before it did; None for a folder that is not a run."""
    if not (run_dir / PROCESS_FILE).is_file():
        return None
    state = "starting" if running_pid(run_dir) is not None else "failed"
    return RunStatus(run_dir.name, run_dir, state, None, 0, 0, None, None)


def _log_has_error(run_dir: Path) -> bool:
    log = run_dir / LOG_FILE
    if not log.is_file():
        return False
    tail = log.read_text(errors="replace").strip().splitlines()[-3:]
    return any(line.startswith(("error:", "Traceback")) or "Error" in line for line in tail)


def list_runs(runs_dir: Path) -> list[RunStatus]:
    if not runs_dir.is_dir():
        return []
    statuses = [run_status(d) for d in sorted(runs_dir.iterdir()) if d.is_dir()]
    return [s for s in statuses if s is not None]


def log_tail(run_dir: Path, lines: int = 20) -> str:
    log = run_dir / LOG_FILE
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.is_file() else ""


def wait(run_dir: Path, timeout: float = 600.0) -> RunStatus | None:
    """Wait for a launched run's process to end (or the timeout); return its status."""
    deadline = time.time() + timeout
    while running_pid(run_dir) is not None and time.time() < deadline:
        time.sleep(0.1)
    return run_status(run_dir)
