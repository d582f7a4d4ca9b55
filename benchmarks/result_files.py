"""Where a benchmark's figures go: `<name>.json` (everything measured, with the command and the machine) and
`<name>.md` (the table quoted in the README), side by side in the results folder."""
import json
import os
import shlex
import time
from pathlib import Path

import torch

from model_cards.card import cpu_model


def run_header(script, argv):
    """What every report starts with: the command that made it, the machine, torch and its threads, the date."""
    return {"command": f"python benchmarks/{script}" + ("" if not argv else " " + shlex.join(argv)),
            "machine": f"{cpu_model()}, {os.cpu_count()} cores", "torch": torch.__version__,
            "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}


def save_results(out_dir, name, report, table):
    """Write `report` as <name>.json and `table` as <name>.md under `out_dir`, and say where."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(table)
    print(f"wrote {out / f'{name}.json'} and {out / f'{name}.md'}")
