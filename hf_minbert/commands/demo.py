"""`minbert demo [--model DIR]`: load a model into minBERT, save and reload it as remote code, and answer two
sentence pairs with every head.

A trained model (`minbert train`'s or `minbert ensemble`'s folder) answers with its own heads, through the
minbert-multitask pipeline. Any other checkpoint — by default the embedded all-MiniLM-L6-v2 — gets fresh heads,
whose answers are random until `minbert train`; the one score meaningful without fine-tuning is then the
bi-encoder cosine similarity of the sentence-embedding model, which the demo shows beside them.
"""
import argparse
import tempfile

import torch
from transformers import AutoModel, PretrainedConfig

from hf_minbert import MinBertConfig, MinBertEnsembleConfig, MinBertForMultitask, embedded_base_model
from hf_minbert.commands.common import (
    check_model_source,
    has_trained_task_heads,
    home_path,
    load_tokenizer,
    readable_weights,
)

PAIRS = [
    ("A man is playing a guitar.", "Someone plays an acoustic guitar."),
    ("A man is playing a guitar.", "The stock market fell sharply today."),
]
COSINE_HEAD = "sts_bi"  # added to an untrained model: the base model's own cosine on STS's 0-5 scale


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=home_path, default=None,
                        help="a trained model folder or a BERT checkpoint (default: the embedded MiniLM)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    path = args.model or embedded_base_model()
    check_model_source("--model", path)
    tokenizer = load_tokenizer(path, "--model")
    config = PretrainedConfig.get_config_dict(path)[0]
    if has_trained_task_heads(config) or config.get("model_type") == MinBertEnsembleConfig.model_type:
        show_trained_model(path, tokenizer)
    else:
        show_base_model(path, tokenizer)
    return 0


def show_trained_model(path, tokenizer):
    from hf_minbert.ensemble import load_multitask_model
    from hf_minbert.pipelines import MinBertMultitaskPipeline

    with readable_weights(f"--model {path}"):
        model = load_multitask_model(path).eval()
    _describe(path, model)
    answer = MinBertMultitaskPipeline(model=model, tokenizer=tokenizer)
    for pair, answers in zip(PAIRS, answer(PAIRS)):
        print(f"\n{pair[0]!r} vs {pair[1]!r}")
        for head, result in answers.items():
            print(f"  {head}: {result}")


def show_base_model(path, tokenizer):
    tasks = {**MinBertConfig().tasks, COSINE_HEAD: {"kind": "regression", "label_range": [0, 5], "pair_encoding": "bi"}}
    with readable_weights(f"--model {path}"):
        model = MinBertForMultitask.from_pretrained(path, tasks=tasks).eval()
    _describe(path, model)
    first, second = zip(*PAIRS)
    with torch.inference_mode():
        a, b = tokenizer(list(first), padding=True, return_tensors="pt"), tokenizer(list(second), padding=True, return_tensors="pt")
        cosine = model(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"],
                       input_ids_b=b["input_ids"], attention_mask_b=b["attention_mask"], task=COSINE_HEAD).logits
        cross = tokenizer(list(first), list(second), padding=True, return_tensors="pt")
        heads = {task: model(**cross, task=task).logits for task in ("sst", "para", "sts")}
    for i, (s1, s2) in enumerate(PAIRS):
        print(f"\n{s1!r} vs {s2!r}")
        print(f"  bi-encoder cosine similarity x 5 (pretrained; the similarity pipeline clips it to 0-5): "
              f"{cosine[i].item():.2f}")
        print(f"  untrained heads: sst {heads['sst'][i].argmax().item()}, para logit {heads['para'][i].item():+.2f}, "
              f"sts {heads['sts'][i].item():.2f} (random until `minbert train`)")


def _describe(path, model):
    """Say what was loaded, and show that it saves and reloads through AutoModel as remote code."""
    print(f"loaded {path}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
          f"heads {list(model.config.tasks)}")
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        reloaded = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        print(f"saved and reloaded through AutoModel(trust_remote_code=True) as {type(reloaded).__name__}")
