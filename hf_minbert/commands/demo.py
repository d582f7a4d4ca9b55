"""`minbert demo`: load the embedded all-MiniLM-L6-v2 weights into minBERT and run every head once.

Shows the remote-code save/load round trip and the one score that is meaningful without fine-tuning:
the bi-encoder cosine similarity of the embedded sentence-embedding model.
"""
import argparse
import tempfile

import torch
from transformers import AutoModel, AutoTokenizer

from hf_minbert import MinBertConfig, MinBertForMultitask, embedded_base_model

PAIRS = [
    ("A man is playing a guitar.", "Someone plays an acoustic guitar."),
    ("A man is playing a guitar.", "The stock market fell sharply today."),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert demo", description=__doc__)
    parser.add_argument("--model", default=None, help="model dir or BERT checkpoint (default: the embedded MiniLM)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    path = args.model or embedded_base_model()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tasks = {**MinBertConfig().tasks, "sts_bi": {"kind": "regression", "label_range": [0, 5], "pair_encoding": "bi"}}
    model = MinBertForMultitask.from_pretrained(path, tasks=tasks).eval()
    print(f"loaded {path}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, tasks {list(model.config.tasks)}")

    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        reloaded = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
        print(f"saved and reloaded through AutoModel(trust_remote_code=True) as {type(reloaded).__name__}")

    first, second = zip(*PAIRS)
    with torch.inference_mode():
        a, b = tokenizer(list(first), padding=True, return_tensors="pt"), tokenizer(list(second), padding=True, return_tensors="pt")
        bi = model(input_ids_a=a["input_ids"], attention_mask_a=a["attention_mask"],
                   input_ids_b=b["input_ids"], attention_mask_b=b["attention_mask"], task="sts_bi").logits
        cross = tokenizer(list(first), list(second), padding=True, return_tensors="pt")
        heads = {task: model(**cross, task=task).logits for task in ("sst", "para", "sts")}
    for i, (s1, s2) in enumerate(PAIRS):
        print(f"\n{s1!r} vs {s2!r}")
        print(f"  bi-encoder cosine similarity on the 0-5 scale (pretrained): {bi[i].item():.2f}")
        print(f"  untrained heads: sst {heads['sst'][i].argmax().item()}, para logit {heads['para'][i].item():+.2f}, "
              f"sts {heads['sts'][i].item():.2f} (random until `minbert train`)")
    return 0
