"""benchmarks/gpu_check.py runs every part at toy sizes on the CPU (on a GPU machine it is run by hand)."""

import os
import subprocess
import sys

from conftest import ROOT


def test_gpu_check_runs_every_part_on_the_cpu():
    # The default step, the compiled one (whose backward once failed: see gan.train.loop's D step) and
    # the compiled one in mode reduce-overhead (CUDA graphs on a GPU, compiled as default here).
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                             "--variants", "default,compile,graphs"],
                            capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [row.split(" | ")[0] for row in rows] == [
        "| speed, batch 8", "| train (pre-training + fine-tuning)", "| torchrun --nproc_per_node 1",
        "| MS-SSIM engine", "| realism judge", "| colour statistics", "| resume: cpu -> cpu"]
    assert all(" | ok | " in row for row in rows), result.stdout
    assert "largest difference" in result.stdout and "pairs/s" in result.stdout
