"""Where a benchmark's figures go: `<name>.json` (everything measured, with the command and the machine) and
`<name>.md` (the table quoted in the README), side by side in the results folder."""
import json
from pathlib import Path


def save_results(out_dir, name, report, table):
    """Write `report` as <name>.json and `table` as <name>.md under `out_dir`, and say where."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(table)
    print(f"wrote {out / f'{name}.json'} and {out / f'{name}.md'}")
