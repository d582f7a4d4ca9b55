"""Remote code on the oldest transformers the project declares (pyproject.toml's `tool.hf_minbert` floor): model folders saved by the
current version load there, in a fresh process where hf_minbert is not installed, and answer as they do here.

    python tests/remote_code_compat.py --python .venv-oldest/bin/python [--dir DIR]

With the project's interpreter it saves a multitask model and an ensemble of two (together they carry every
code file: configuration_minbert.py, the modeling_minbert*.py modules, pipelines.py), writes
what AutoModel, the stock TextClassificationPipeline and every folder pipeline answer to DIR/reference.json,
then runs `--python ... remote_code_compat.py check DIR`, which computes the same answers and compares them
within TOLERANCE. Exit status 0 when all agree; otherwise the first difference is printed.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOLERANCE = 1e-5
FOLDERS = ("multitask", "ensemble")
SENTENCES = ["a gorgeous , witty film", "the plot was dull", "good"]
PAIRS = [("a gorgeous , witty film", "a fine and clever movie"), ("the plot was dull", "it is not very good")]
FOLDER_PIPELINES = ("text-classification", "paraphrase-detection", "sentence-similarity", "minbert-multitask")


# ----------------------------------------------------------------------------------------------------------
# Both sides: the answers of one saved folder, through transformers alone
# ----------------------------------------------------------------------------------------------------------


def answers(folder):
    """What a user of the saved folder gets: AutoModel logits per head (sentences and cross-encoded pairs,
    padded batches), the stock TextClassificationPipeline over AutoModelForSequenceClassification, and every
    pipeline the folder names."""
    import torch
    from transformers import (
        AutoModel,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TextClassificationPipeline,
        pipeline,
    )
    from transformers.utils import logging

    logging.set_verbosity_error()  # load reports and progress bars would bury the one line that matters
    logging.disable_progress_bar()
    folder = str(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    result = {"model_class": type(model).__name__}
    sentences = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    pairs = tokenizer([a for a, _ in PAIRS], [b for _, b in PAIRS], padding=True, return_tensors="pt")
    with torch.no_grad():
        for task, spec in model.config.tasks.items():
            inputs = sentences if spec["pair_encoding"] == "single" else pairs
            result[f"AutoModel/{task}"] = model(**inputs, task=task).logits.tolist()
    classifier = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
    stock = TextClassificationPipeline(model=classifier, tokenizer=tokenizer)
    result["TextClassificationPipeline"] = stock(SENTENCES, top_k=None)
    for task in FOLDER_PIPELINES:
        pipe = pipeline(task, model=folder, trust_remote_code=True)
        inputs = SENTENCES if task == "text-classification" else PAIRS
        result[f"pipeline/{task}"] = {"class": type(pipe).__name__, "answers": pipe(inputs, batch_size=2)}
    return result


def first_difference(expected, actual, where="", tolerance=TOLERANCE):
    """None if the two agree (floats within `tolerance`), else where and how they differ."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return f"{where}: keys {sorted(expected)} != {sorted(actual)}"
        diffs = (first_difference(expected[k], actual[k], f"{where}/{k}", tolerance) for k in expected)
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{where}: {len(expected)} items != {len(actual)}"
        diffs = (first_difference(e, a, f"{where}[{i}]", tolerance) for i, (e, a) in enumerate(zip(expected, actual)))
    elif isinstance(expected, float) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        ok = math.isclose(expected, actual, rel_tol=0, abs_tol=tolerance) or (math.isnan(expected) and math.isnan(actual))
        return None if ok else f"{where}: {expected!r} != {actual!r}"
    else:
        return None if expected == actual else f"{where}: {expected!r} != {actual!r}"
    return next((diff for diff in diffs if diff is not None), None)


# ----------------------------------------------------------------------------------------------------------
# The saving side (the project's environment)
# ----------------------------------------------------------------------------------------------------------


def save_folders(root):
    """A multitask model and an ensemble of two, each with the embedded tokenizer, under `root`."""
    import torch
    from transformers import AutoTokenizer

    from hf_minbert import MinBertConfig, MinBertForMultitask, embedded_base_model
    from hf_minbert.modeling_minbert_ensemble import MinBertEnsembleForMultitask

    def member(seed):
        torch.manual_seed(seed)
        config = MinBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                               intermediate_size=64, max_position_embeddings=64)
        model = MinBertForMultitask(config).eval()
        # A random sts head answers near 0, where clipping to [0, 5] would hide any difference.
        model.heads["sts"].layers[-1].bias.data.fill_(2.5)
        return model

    tokenizer = AutoTokenizer.from_pretrained(embedded_base_model())
    first, second = member(0), member(1)
    ensemble = MinBertEnsembleForMultitask.from_members(
        [first, second], task_weights={"sst": [0.5, 0.5], "para": [1.0, 0.0], "sts": [0.25, 0.75]}
    )
    for name, model in zip(FOLDERS, (first, ensemble)):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)


def run_check(python, root):
    """Save the folders and their reference answers here, then check them with `python` in a fresh process."""
    import transformers

    save_folders(root)
    reference = {"transformers": transformers.__version__,
                 "answers": {name: answers(root / name) for name in FOLDERS}}
    (root / "reference.json").write_text(json.dumps(reference, indent=1))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(root / "modules-cache"),
           "PYTHONPATH": "", "TOKENIZERS_PARALLELISM": "false"}
    # abspath, not resolve: a venv's python is a symlink whose target would lose the venv.
    proc = subprocess.run([os.path.abspath(python), str(Path(__file__).resolve()), "check", str(root)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
    return proc.returncode


# ----------------------------------------------------------------------------------------------------------
# The checking side (the oldest environment: transformers and torch only)
# ----------------------------------------------------------------------------------------------------------


def check(root):
    try:
        import hf_minbert  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("hf_minbert is importable here: the check would not test the saved code alone")
    import transformers

    reference = json.loads((root / "reference.json").read_text())
    for name in FOLDERS:
        difference = first_difference(reference["answers"][name], answers(root / name), name)
        if difference is not None:
            print(f"transformers {transformers.__version__} differs from {reference['transformers']}: {difference}")
            return 1
        print(f"{name}: transformers {transformers.__version__} answers as {reference['transformers']} "
              f"(AutoModel, TextClassificationPipeline, {', '.join(FOLDER_PIPELINES)})")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=["check"], help="(internal) the oldest side's comparison")
    parser.add_argument("root", nargs="?", help="(check) the folder holding the saved models and reference.json")
    parser.add_argument("--python", help="the oldest environment's interpreter")
    parser.add_argument("--dir", help="where to save (default: a temporary folder)")
    args = parser.parse_args(argv)
    if args.mode == "check":
        return check(Path(args.root))
    if not args.python:
        parser.error("--python: the oldest environment's interpreter is required")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minbert-oldest-") as scratch:
        status = run_check(args.python, Path(args.dir or scratch).absolute())
    print(f"oldest-transformers remote-code check: {'passed' if status == 0 else 'FAILED'} "
          f"in {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
