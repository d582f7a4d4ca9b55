"""Small builders shared by tests (kept out of conftest so tests can import them explicitly)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]

# Prepended to subprocess scripts: makes `import hf_minbert` / `import trainers` fail, as on a machine
# where the package is not installed, so only the code saved next to the weights can be used.
BLOCK_PROJECT_IMPORTS = textwrap.dedent(
    """
    import importlib.abc, sys
    class _BlockProject(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("hf_minbert", "trainers"):
                raise ImportError(f"{name} is not installed here")
    sys.meta_path.insert(0, _BlockProject())
    try:
        import hf_minbert
    except ImportError:
        pass
    else:
        raise SystemExit("hf_minbert importable: isolation failed")
    """
)


def run_isolated(script: str, cwd, timeout=300, python=sys.executable) -> str:
    """Run `script` with `python` (default: this one) in a fresh process where hf_minbert cannot be imported;
    return stdout or fail loudly."""
    code = BLOCK_PROJECT_IMPORTS + textwrap.dedent(script)
    proc = subprocess.run(
        [python, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""},
    )
    assert proc.returncode == 0, f"isolated run failed:\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr[-4000:]}"
    return proc.stdout


def oldest_python() -> str:
    """The interpreter of the venv with the oldest transformers the remote code declares (MINBERT_OLDEST_PYTHON,
    else .venv-oldest/). Where there is none the calling test skips; where MINBERT_OLDEST_PYTHON names a missing
    one (as in CI, which builds it) it fails."""
    python = os.environ.get("MINBERT_OLDEST_PYTHON") or str(REPO_ROOT / ".venv-oldest" / "bin" / "python")
    if not Path(python).is_file():
        if os.environ.get("MINBERT_OLDEST_PYTHON"):
            pytest.fail(f"MINBERT_OLDEST_PYTHON={python} does not exist")
        pytest.skip(f"no oldest-transformers venv at {python}")
    return python


def isolated_answers(python: str, script: str, cwd) -> dict:
    """`run_isolated` for a script that prints one line 'ANSWERS <json>': that JSON."""
    out = run_isolated(script, cwd, timeout=900, python=python)
    return json.loads(next(line for line in out.splitlines() if line.startswith("ANSWERS "))[len("ANSWERS "):])


def in_process_pipelines(model, tokenizer):
    """`make(task, **kwargs)`: a pipeline over a model object, as a folder's config.json would build it (a model
    object otherwise gets transformers' stock text-classification pipeline, not minBERT's)."""
    from transformers import pipeline

    from hf_minbert.pipelines import MinBertSentimentPipeline

    def make(task, **kwargs):
        if task in ("text-classification", "sentiment-analysis"):
            kwargs["pipeline_class"] = MinBertSentimentPipeline
        return pipeline(task, model=model, tokenizer=tokenizer, **kwargs)

    return make


def random_batch(config, batch=3, length=9, pairs=True, seed=0):
    """A padded batch: row lengths differ, and (with pairs) token types mark a second segment."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, config.vocab_size, (batch, length), generator=g)
    attention_mask = torch.ones(batch, length, dtype=torch.long)
    token_type_ids = torch.zeros(batch, length, dtype=torch.long)
    for row in range(batch):
        used = length - 2 * row
        attention_mask[row, used:] = 0
        input_ids[row, used:] = 0
        if pairs and row % 2 == 0:
            token_type_ids[row, used // 2 : used] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}


WORDS = "good bad fine film movie plot dull great awful witty a the is was it this that not very".split()


def word_tokenizer(words=WORDS):
    """An uncased word-level BERT tokenizer over `words`: token counts are easy to reason about."""
    from transformers import BertTokenizer

    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])}
    return BertTokenizer(vocab=vocab)


def tiny_task_rows(n=24, seed=0):
    """Small labelled rows for sst, para and sts in the readers' schema (built in memory)."""
    import random

    import datasets

    rng = random.Random(seed)

    def sentence():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))

    sst = {"id": [f"s{i}" for i in range(n)], "sentence": [sentence() for _ in range(n)],
           "sentiment": [rng.randint(0, 4) for _ in range(n)]}
    para = {"id": [f"p{i}" for i in range(n)], "sentence1": [sentence() for _ in range(n)],
            "sentence2": [sentence() for _ in range(n)], "is_duplicate": [float(rng.random() < 0.5) for _ in range(n)]}
    sts = {"id": [f"t{i}" for i in range(n)], "sentence1": [sentence() for _ in range(n)],
           "sentence2": [sentence() for _ in range(n)], "similarity": [round(rng.uniform(0, 5), 2) for _ in range(n)]}
    return {"sst": datasets.Dataset.from_dict(sst), "para": datasets.Dataset.from_dict(para),
            "sts": datasets.Dataset.from_dict(sts)}


def tiny_model(tasks=None, seed=0, **config_overrides):
    """A random 2-layer, 32-wide minBERT with the embedded tokenizer's vocabulary."""
    from hf_minbert import MinBertConfig, MinBertForMultitask

    torch.manual_seed(seed)
    config = MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=64, tasks=tasks, **config_overrides)
    return MinBertForMultitask(config)


def scoring_tiny_model(seed=0, **config_overrides):
    """`tiny_model` whose STS head answers mid-scale (its bias at 2.5): a random head answers near 0, where most
    similarity scores would be clipped to 0, too constant to correlate (STS r undefined)."""
    model = tiny_model(seed=seed, **config_overrides)
    model.heads["sts"].layers[-1].bias.data.fill_(2.5)
    return model


def write_task_files(folder, rows_by_task, split="dev"):
    """Write task rows (the readers' schema, e.g. from `tiny_task_rows`) as CS224N files in `folder`:
    tab-separated, a header line, an unnamed index column first."""
    from pathlib import Path

    from hf_minbert.data import task_schema

    for task, rows in rows_by_task.items():
        schema = task_schema(task)
        columns = [column for column in schema.columns(labelled=True) if column in rows.column_names]
        lines = ["\t" + "\t".join(columns)]
        lines += [f"{index}\t" + "\t".join(str(row[c]) for c in columns) for index, row in enumerate(rows)]
        (Path(folder) / schema.file_name(split)).write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_benchmark(name):
    """benchmarks/<name>.py as a module (the scripts import their siblings, so benchmarks/ joins sys.path meanwhile)."""
    import importlib.util

    benchmarks = REPO_ROOT / "benchmarks"
    sys.path.insert(0, str(benchmarks))
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_benchmark", benchmarks / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(benchmarks))
    return module


def refused_calls(monkeypatch, module, name):
    """Replace `module.name` (a reader of data or texts) by one that records its call and fails: a check made
    before anything is read leaves the returned list empty."""
    calls = []

    def read(*args, **kwargs):
        calls.append(args)
        raise RuntimeError(f"{name} was called")

    monkeypatch.setattr(module, name, read)
    return calls


def folder_bytes(folder):
    """Every file under `folder`, by relative path, with its bytes: two folders compare equal file for file."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(Path(folder).rglob("*")) if path.is_file()}


def free_port():
    """A local TCP port nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
