"""`minbert train` in Python: multitask fine-tuning of the embedded all-MiniLM-L6-v2 on the CS224N tasks.

    python examples/train_multitask.py ../shared/data runs/example [max rows per task]
"""
import sys

from transformers import AutoTokenizer

from hf_minbert import MinBertConfig, MinBertForMultitask, embedded_base_model
from hf_minbert.data import read_task_splits
from hf_minbert.evaluation import evaluate_model, write_metrics_json
from trainers import MultitaskTrainer, MultitaskTrainingArguments

data_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
output_dir = sys.argv[2] if len(sys.argv) > 2 else "runs/example"
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None

# The three tasks' train and dev rows; the two unlabelled Quora rows are skipped and reported.
train, dev = {}, {}
for task in ("sst", "para", "sts"):
    splits, reports = read_task_splits(data_dir, task, ("train", "dev"), skip_bad_rows=True)
    print(reports["train"])
    train[task] = splits["train"].select(range(min(limit, len(splits["train"])))) if limit else splits["train"]
    dev[task] = splits["dev"]

# Heads: SST (5 classes), Quora (binary, cross-encoded), STS (0-5, the cosine of the two sentences' embeddings).
# As `minbert train` does: each task owns a copy of the top 2 encoder layers (CerBERTus), the rest is shared.
tasks = MinBertConfig().tasks
tasks["sts"]["pair_encoding"] = "bi"
base = embedded_base_model()
model = MinBertForMultitask.from_pretrained(base, tasks=tasks, task_specific_layers=2)
tokenizer = AutoTokenizer.from_pretrained(base)

args = MultitaskTrainingArguments(
    output_dir=output_dir,
    num_train_epochs=6,  # as minbert train: dev SST and Quora still gain from the fourth to the sixth epoch
    task_sampling="proportional",  # or round_robin, temperature, equal_split, sequential, all_tasks
    smart_weight="sst=1",  # SMART λ per task
    mnr_weight=0.0,  # Multiple Negatives Ranking loss on Quora's paraphrase pairs
    layerwise_lr_decay=1.0,  # 0.95 as in seed 002
)
trainer = MultitaskTrainer(model=model, args=args, train_dataset=train, eval_dataset=dev, processing_class=tokenizer)
trainer.train()
trainer.save_model(output_dir)  # weights, config, remote code, pipelines, tokenizer

metrics = evaluate_model(trainer.model, tokenizer, dev, bf16=args.bf16)
write_metrics_json(f"{output_dir}/metrics.json", metrics)
print(metrics)
