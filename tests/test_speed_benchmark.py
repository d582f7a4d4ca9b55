"""benchmarks/speed.py's bookkeeping (not its timings): each history row names the CPU it ran on, because
MFU is a share of that machine's own measured peak and the project's machines differ."""
import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def speed():
    sys.path.insert(0, str(BENCHMARKS))  # speed.py imports its sibling result_files
    try:
        spec = importlib.util.spec_from_file_location("speed_benchmark", BENCHMARKS / "speed.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_history_row_records_the_cpu_and_its_bf16_peak(speed):
    settings = speed.SpeedSettings(label="a change")
    cells = {"train-bf16": {"mfu": {"minbert": 0.5}, "ratio": 2.0}}
    row = speed.history_row(settings, "python benchmarks/speed.py", cells, {"ratio": 1.3}, {"cpu": "AMD EPYC"}, 0.44)
    assert (row["cpu"], row["bf16 peak tflops"], row["train-bf16 mfu"]) == ("AMD EPYC", 0.44, 0.5)


def test_history_table_shows_each_rows_cpu_and_marks_rows_without_one(speed):
    rows = [{"label": "old", "command": "c", "train-bf16 mfu": 0.1},
            {"label": "new", "command": "c", "train-bf16 mfu": 0.5, "cpu": "AMD EPYC", "bf16 peak tflops": 0.44}]
    assert [speed._history_cpu(row) for row in rows] == ["not recorded", "AMD EPYC (0.44)"]
