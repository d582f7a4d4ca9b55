"""The documentation's promises about itself: the README stays a short product page, every relative link in
the README, docs/ and benchmarks/ leads to a file (and heading) that exists, and every flag of a
`minbert` command (beyond transformers' TrainingArguments) is documented in its guide."""
import dataclasses
import re
from pathlib import Path

import pytest
from transformers import TrainingArguments

ROOT = Path(__file__).resolve().parents[1]
README_MAX_LINES = 250
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "benchmarks").glob("*.md")])
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target); images are not links
FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)


def relative_links(document: Path):
    text = FENCE.sub("", document.read_text(encoding="utf-8"))  # code blocks hold no links
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def heading_anchors(document: Path):
    """GitHub's anchors: each heading lowercased, punctuation but hyphens dropped, spaces as hyphens."""
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    anchors = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_readme_is_at_most_250_lines():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/ or benchmarks/RESULTS.md"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_leads_to_an_existing_file_and_heading(document):
    broken = []
    for target in relative_links(document):
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
    assert not broken, f"{document.relative_to(ROOT)}: broken links: {broken}"


def command_flags(command, capsys):
    """The long options `minbert <command> --help` lists in its usage line (not those its help texts mention)."""
    from hf_minbert.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    usage = capsys.readouterr().out.split("\n\n")[0]
    return set(re.findall(r"(?<![\w-])--(\w+)", usage))


def command_section(guide: str, command: str) -> str:
    """The part of a guide about one command: the `##` section whose heading names it, where the guide has one
    (docs/commands.md: a flag documented for another command does not count), else the whole guide."""
    sections = re.split(r"^(?=## )", guide, flags=re.M)
    named = [section for section in sections if re.match(rf"## .*`minbert {re.escape(command)}`", section)]
    return "".join(named) or guide


# Where each command's flags are documented: training's in their guide, the other commands' in one page.
GUIDES = {"train": "training.md", "distill": "training.md", **{command: "commands.md" for command in (
    "evaluate", "ensemble", "pretrain-mlm", "card", "push", "space", "serve", "demo")}}


@pytest.mark.parametrize("command", GUIDES)
def test_every_project_flag_of_the_command_is_documented_in_its_guide(command, capsys):
    flags = command_flags(command, capsys)
    trainer_fields = {field.name for field in dataclasses.fields(TrainingArguments)}
    # --no_x is argparse's negation of a boolean flag --x that defaults to true: documented with --x.
    own = {flag for flag in flags - trainer_fields - {"help"} if not (flag.startswith("no_") and flag[3:] in flags)}
    guide = command_section((ROOT / "docs" / GUIDES[command]).read_text(encoding="utf-8"), command)
    missing = sorted(flag for flag in own if f"`--{flag}`" not in guide)
    assert not missing, f"docs/{GUIDES[command]} does not document these `minbert {command}` flags: {missing}"
