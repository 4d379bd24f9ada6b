"""The app's Train page starts runs as processes and stops them by their process.json."""

import json
import os
import subprocess
import sys
import time

import pytest

from gan.train import launcher


def test_stop_signals_the_runs_process_and_never_one_that_took_its_pid(tmp_path):
    command = [sys.executable, "-c", "import time; time.sleep(600)"]
    other = subprocess.Popen(command)
    try:
        # A run whose process ended long ago; its pid now belongs to another process (pids are
        # reused), which did not start when the run's did.
        (tmp_path / "process.json").write_text(json.dumps({"pid": other.pid, "start_time": "1", "started": 0,
                                                           "command": command}))
        assert launcher.stop(tmp_path, timeout=5) is False
        time.sleep(0.2)
        assert other.poll() is None  # not signalled
        assert launcher.running_pid(tmp_path) is None

        # A record from before start times were kept: the command line tells them apart.
        (tmp_path / "process.json").write_text(json.dumps({"pid": other.pid, "command": ["python", "-m", "gan"]}))
        assert launcher.running_pid(tmp_path) is None and launcher.stop(tmp_path, timeout=5) is False

        # The run's own process is stopped.
        launcher.record_process(tmp_path, other.pid, command)
        assert launcher.running_pid(tmp_path) == other.pid
        assert launcher.stop(tmp_path, timeout=30) is True
        assert launcher.running_pid(tmp_path) is None
        with pytest.raises(ProcessLookupError):  # ended (and reaped by stop's wait)
            os.kill(other.pid, 0)
    finally:
        other.kill()
        other.wait()


def test_a_run_that_failed_on_its_data_can_be_started_again_under_its_name(tmp_path, demo_dir):
    tiny = ["--steps", "2", "--batch-size", "4", "--resolution", "32", "--width", "8", "--latent-dim", "16",
            "--device", "cpu", "--precision", "fp32"]
    launcher.launch(tmp_path, "x", ["--data", str(tmp_path / "missing"), *tiny]).wait(timeout=120)
    assert "error: " in launcher.log_tail(tmp_path / "x") and not (tmp_path / "x" / "config.json").exists()
    launcher.launch(tmp_path, "x", ["--data", str(demo_dir / "labelled"), *tiny]).wait(timeout=120)
    assert launcher.run_status(tmp_path / "x").state == "finished"
    assert "finetune step 2/2" in launcher.log_tail(tmp_path / "x")  # progress lines in train.log
