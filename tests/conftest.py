import os

# No network here: make every Hub call fail fast instead of waiting on timeouts.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models spend their time in thread hand-offs, not arithmetic: one thread is several times faster.
torch.set_num_threads(1)

pytest_plugins = ["tests.hub_fixtures"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def tiny_config():
    """A 2-layer, 32-wide random config: fast enough for every unit test."""
    from hf_minbert import MinBertConfig

    return MinBertConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )


@pytest.fixture(scope="session")
def minilm_path():
    from hf_minbert import embedded_base_model

    return embedded_base_model()


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a subprocess, server, browser or end-to-end training test (over half a second)")
