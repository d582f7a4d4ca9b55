"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: a few multitask steps with SMART
on a tiny model (gloo, CPU), with the task sampling strategy given (and PCGrad, gradient checkpointing when
asked, and the embedding losses gathered across the ranks); each rank writes the examples it trained on, its logged loss terms and a digest of its weights.

Usage: ddp_worker.py OUT_DIR [STRATEGY] [pcgrad] [checkpointing] [gather]"""
import hashlib
import json
import os
import sys

from transformers import AutoTokenizer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from hf_minbert import embedded_base_model  # noqa: E402
from tests.helpers import tiny_model, tiny_task_rows  # noqa: E402
from trainers import MultitaskTrainer, MultitaskTrainingArguments  # noqa: E402
from trainers.multitask_data import MultitaskDataLoader  # noqa: E402


class RecordingSampler:
    """Passes the batch sampler through, keeping every batch of global indices it hands out."""

    def __init__(self, sampler):
        self.sampler, self.batches = sampler, []

    def set_epoch(self, epoch):
        self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        for batch in self.sampler:
            self.batches.append([int(i) for i in batch])
            yield batch


class RecordingTrainer(MultitaskTrainer):
    def get_train_dataloader(self):
        loader = super().get_train_dataloader()
        self.recorder = RecordingSampler(loader.batch_sampler)
        return MultitaskDataLoader(loader.dataset, batch_sampler=self.recorder, collate_fn=loader.collate_fn)


def main(out_dir, strategy="proportional", pcgrad=False, checkpointing=False, gather=False):
    gathered_losses = dict(mnr_weight=1.0, mnr_gather_across_devices=True, mnr_symmetric=True, cosent_weight=1.0,
                           cosent_gather_across_devices=True) if gather else {}
    args = MultitaskTrainingArguments(
        output_dir=out_dir, use_cpu=True, ddp_backend="gloo", per_device_train_batch_size=4, max_steps=6,
        eval_strategy="no", save_strategy="no", report_to="none", smart_weight="sst=2,para=2,sts=2",
        learning_rate=1e-3, logging_steps=1, disable_tqdm=True, max_seq_length=32,
        task_sampling=strategy, pcgrad=pcgrad, gradient_checkpointing=checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None, **gathered_losses,
    )
    trainer = RecordingTrainer(model=tiny_model(seed=3), args=args, train_dataset=tiny_task_rows(),
                               processing_class=AutoTokenizer.from_pretrained(embedded_base_model()))
    trainer.train()
    digest = hashlib.sha256()
    for name, tensor in sorted(trainer.model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    steps = trainer.recorder.batches[: trainer.state.global_step]
    sampler = trainer.recorder.sampler
    record = {
        "rank": args.process_index, "world_size": args.world_size, "global_step": trainer.state.global_step,
        "batches": steps, "tasks": [sorted({sampler.task_of(i) for i in b}) for b in steps],
        "weights": digest.hexdigest(), "smart_computed": trainer.smart.stats.computed,
        "terms": [{key: value for key, value in entry.items()
                   if key.startswith(("loss_", "smart_", "pcgrad_", "mnr", "cosent"))}
                  for entry in trainer.state.log_history if "loss" in entry],
    }
    with open(os.path.join(out_dir, f"rank{args.process_index}.json"), "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    options = sys.argv[3:]
    main(sys.argv[1], *sys.argv[2:3], pcgrad="pcgrad" in options, checkpointing="checkpointing" in options,
         gather="gather" in options)
