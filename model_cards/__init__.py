"""Model cards for trained minBERT models, built on `huggingface_hub.ModelCard` so the Hub renders a
model-index from the dev metrics."""
from .card import build_model_card, regenerate_model_card, set_card_options, usage_snippet, write_model_card
from .run_record import load_run_record, save_training_config

__all__ = [
    "build_model_card",
    "load_run_record",
    "regenerate_model_card",
    "save_training_config",
    "set_card_options",
    "usage_snippet",
    "write_model_card",
]
