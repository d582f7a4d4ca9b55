"""Multitask fine-tuning of hf_minbert on `transformers.Trainer`: task sampling, SMART, MNR loss and PCGrad."""
from .arguments import MultitaskTrainingArguments
from .multitask_data import MultitaskCollator
from .trainer import MultitaskTrainer

__all__ = ["MultitaskCollator", "MultitaskTrainer", "MultitaskTrainingArguments"]
