"""Where a benchmark's figures go: `<name>.json` (everything measured, with the command and the machine) and
`<name>.md` (the table quoted in the README), side by side in the results folder; and how a result names
the machine that measured it.

torch is imported only where a function needs it: quality.py's `--list` and `--render` run without it."""
import json
import os
import shlex
import time
from pathlib import Path

from model_cards.run_record import cpu_model


def command_line(script, argv):
    """The command that ran `benchmarks/<script>` with `argv`, as a report quotes it."""
    return f"python benchmarks/{script}" + ("" if not argv else " " + shlex.join(argv))


def machine_name():
    """The CPU and its core count, as every report names its machine: "AMD EPYC, 2 cores"."""
    return f"{cpu_model()}, {os.cpu_count()} cores"


def print_machine():
    """Say which CPU and how many torch threads the figures printed next come from."""
    import torch

    print(f"CPU: {cpu_model()}, {torch.get_num_threads()} torch threads", flush=True)


def run_header(script, argv):
    """What every report starts with: the command that made it, the machine, torch and its threads, the date."""
    import torch

    return {"command": command_line(script, argv), "machine": machine_name(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}


def append_history(out_dir, name, row):
    """The history of the report `<name>.json` in `out_dir` (one row per earlier run; none without a
    report), then `row`: rerunning a benchmark adds its run to the table instead of replacing it."""
    path = Path(out_dir) / f"{name}.json"
    if not path.exists():
        return [row]
    try:
        history = json.loads(path.read_text()).get("history", [])
    except (OSError, ValueError) as error:  # starting afresh would drop every earlier run from the table
        raise SystemExit(f"{path}: cannot read its history ({error}); restore it (git checkout {path}) or move it "
                         "away, then run again") from None
    return history + [row]


def save_results(out_dir, name, report, table):
    """Write `report` as <name>.json and `table` as <name>.md under `out_dir`, and say where. Each file is
    written beside its place and then renamed into it: an interrupted write leaves the previous results whole."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for path, text in ((out / f"{name}.json", json.dumps(report, indent=2) + "\n"), (out / f"{name}.md", table)):
        partial = path.with_name(path.name + ".partial")
        partial.write_text(text)
        os.replace(partial, path)
    print(f"wrote {out / f'{name}.json'} and {out / f'{name}.md'}")
