"""`minbert train` in Python: multitask fine-tuning of the embedded all-MiniLM-L6-v2 on the CS224N tasks.

    python examples/train_multitask.py ../shared/data runs/example [max rows per task]

It trains what `minbert train --max_train_samples N` trains: the default recipe (hf_minbert/recipe.py).
"""
import sys

from transformers import AutoTokenizer, set_seed

from hf_minbert import MinBertForMultitask, embedded_base_model, recipe
from hf_minbert.data import default_training_sources, read_task_splits, read_training_sources, row_texts
from hf_minbert.evaluation import evaluate_model, write_metrics_json
from trainers import MultitaskTrainer, MultitaskTrainingArguments

data_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
output_dir = sys.argv[2] if len(sys.argv) > 2 else "runs/example"
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None

# Each task's training files: the course's, plus the treebank's phrases and Quora's extra pairs when the data
# folder has them (a row repeating an earlier file's row is dropped and reported), and its dev rows. A training
# row whose text equals a dev row's (a sentence, or a pair in either order) is dropped too: its dev score would
# be measured on a row trained on.
train, dev, reports = {}, {}, []
for task, sources in default_training_sources(data_dir).items():
    splits, _ = read_task_splits(data_dir, task, ("dev",), skip_bad_rows=True)
    dev[task] = splits["dev"]
    rows, report = read_training_sources(task, sources, skip_bad_rows=True, exclude_texts=row_texts(dev[task], task))
    print(report)
    train[task] = rows.select(range(min(limit, len(rows)))) if limit else rows
    reports.append(report)

# The recipe's training settings are the defaults: proportional task sampling with SST capped at 16k rows an
# epoch, SMART and MNR off, no layer-wise lr decay. Any field may be set here, e.g. task_sampling="temperature",
# smart_weight="sst=1", mnr_weight=0.1 or layerwise_lr_decay=0.95 (see docs/training.md).
args = MultitaskTrainingArguments(output_dir=output_dir)
# Seed before the heads are drawn: Trainer seeds only when it is built, after the model exists.
set_seed(args.seed)

# The recipe's heads: SST (5 classes), Quora (binary, cross-encoded), STS (0-5, the cosine of the two sentences'
# embeddings); each task owns a copy of the top 2 encoder layers (CerBERTus), the rest is shared.
base = embedded_base_model()
model = MinBertForMultitask.from_pretrained(base, **recipe.model_kwargs(base))
tokenizer = AutoTokenizer.from_pretrained(base)
# The course's rows (each task's first file) are read whole every epoch; the cap applies to the rows after them.
always_rows = recipe.first_source_rows(reports, {task: range(len(rows)) for task, rows in train.items()})
trainer = MultitaskTrainer(model=model, args=args, train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
                           always_rows=always_rows)
trainer.train()
trainer.save_model(output_dir)  # weights, config, remote code, pipelines, tokenizer

metrics = evaluate_model(trainer.model, tokenizer, dev, bf16=args.bf16)
write_metrics_json(f"{output_dir}/metrics.json", metrics)
print(metrics)
