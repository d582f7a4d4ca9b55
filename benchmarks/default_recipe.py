"""The default `minbert train` recipe as the speed benchmarks build it: its data, model and `MultitaskTrainer`
(evaluation, saving and progress bars off), ready to `train()` for as many steps as a benchmark times."""
from typing import NamedTuple

import transformers


class DefaultRecipe(NamedTuple):
    trainer: transformers.Trainer
    train: dict  # each task's training rows before tokenizing
    dev: dict  # each task's dev rows
    base_path: str  # where the base model's weights and tokenizer are


def default_recipe(data_dir, output_dir, extra_flags=(), seed=42, trainer_class=None, callbacks=()):
    """Build the default recipe the way `minbert train` does, with `extra_flags` on top of its defaults."""
    from hf_minbert.commands.head_options import base_task_specs, task_specs
    from hf_minbert.commands.train import build_model, check_run, seed_run
    from hf_minbert.commands.train_arguments import parse_arguments
    from hf_minbert.commands.train_data import always_rows, load_task_data
    from trainers import MultitaskTrainer

    flags = ["--data_dir", str(data_dir), "--output_dir", str(output_dir), "--eval_strategy", "no",
             "--save_strategy", "no", "--load_best_model_at_end", "false", "--report_to", "none",
             "--disable_tqdm", "true", "--seed", str(seed)]
    model_args, data_args, training_args, _ = parse_arguments(flags + list(extra_flags))
    specs = task_specs(model_args, *base_task_specs(model_args))
    check_run(model_args, data_args, training_args, specs)
    train, dev, reports = load_task_data(data_args, specs)
    seed_run(training_args)
    base_path, model = build_model(model_args, specs)
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_path)
    trainer = (trainer_class or MultitaskTrainer)(
        model=model, args=training_args, train_dataset=train, processing_class=tokenizer, callbacks=list(callbacks),
        always_rows=always_rows(reports, data_args))
    return DefaultRecipe(trainer, train, dev, base_path)
