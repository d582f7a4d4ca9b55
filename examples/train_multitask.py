"""`minbert train` in Python: multitask fine-tuning of the embedded all-MiniLM-L6-v2 on the CS224N tasks.

    python examples/train_multitask.py ../shared/data runs/example [max rows per task]
"""
import sys

from transformers import AutoTokenizer, set_seed

from hf_minbert import MinBertConfig, MinBertForMultitask, embedded_base_model
from hf_minbert.data import default_training_sources, read_task_splits, read_training_sources
from hf_minbert.evaluation import evaluate_model, write_metrics_json
from trainers import MultitaskTrainer, MultitaskTrainingArguments

data_dir = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
output_dir = sys.argv[2] if len(sys.argv) > 2 else "runs/example"
limit = int(sys.argv[3]) if len(sys.argv) > 3 else None

# Each task's training files: the course's, plus the treebank's phrases and Quora's extra pairs when the data
# folder has them (a row repeating an earlier file's row is dropped and reported), and its dev rows.
train, dev, sentences_first = {}, {}, {}
for task, sources in default_training_sources(data_dir).items():
    splits, _ = read_task_splits(data_dir, task, ("dev",), skip_bad_rows=True)
    dev[task] = splits["dev"]
    dev_sentences = set(dev[task]["sentence"]) if task == "sst" else ()  # no phrase equal to a dev sentence
    rows, report = read_training_sources(task, sources, skip_bad_rows=True, exclude_sentences=dev_sentences)
    print(report)
    train[task] = rows.select(range(min(limit, len(rows)))) if limit else rows
    sentences_first[task] = min(report.sources[0].kept, len(train[task]))  # the course's rows lead

args = MultitaskTrainingArguments(
    output_dir=output_dir,
    task_sampling="proportional",  # or round_robin, temperature, equal_split, sequential, all_tasks
    task_epoch_rows="sst=16000",  # each epoch every SST sentence and the next 16k of its ~150k phrases
    smart_weight="0",  # SMART λ per task, e.g. "sst=1"
    mnr_weight=0.0,  # Multiple Negatives Ranking loss on Quora's paraphrase pairs
    layerwise_lr_decay=1.0,  # 0.95 as in seed 002
    seed=42,
)
# Seed before the heads are drawn: Trainer seeds only when it is built, after the model exists.
set_seed(args.seed)

# Heads: SST (5 classes), Quora (binary, cross-encoded), STS (0-5, the cosine of the two sentences' embeddings).
# As `minbert train` does: each task owns a copy of the top 2 encoder layers (CerBERTus), the rest is shared.
tasks = MinBertConfig().tasks
tasks["sts"]["pair_encoding"] = "bi"
base = embedded_base_model()
model = MinBertForMultitask.from_pretrained(base, tasks=tasks, task_specific_layers=2)
tokenizer = AutoTokenizer.from_pretrained(base)
trainer = MultitaskTrainer(model=model, args=args, train_dataset=train, eval_dataset=dev, processing_class=tokenizer,
                           always_rows=sentences_first)  # the course's rows are read whole every epoch
trainer.train()
trainer.save_model(output_dir)  # weights, config, remote code, pipelines, tokenizer

metrics = evaluate_model(trainer.model, tokenizer, dev, bf16=args.bf16)
write_metrics_json(f"{output_dir}/metrics.json", metrics)
print(metrics)
