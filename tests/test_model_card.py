"""Model cards: the model-index matches metrics.json, the body states the run's configuration, time and
hardware, the usage snippet runs, and `minbert card DIR` regenerates the card from the folder alone."""
import json
import re

import pytest
import yaml
from transformers import AutoTokenizer

from hf_minbert.cli import main as minbert
from hf_minbert.commands.train import DataArguments, ModelArguments
from hf_minbert.metrics import with_overall_scores
from model_cards import regenerate_model_card, write_model_card
from model_cards.card import TRAINING_CONFIG_FILE, WIDGET_SENTENCES
from tests.helpers import run_isolated, tiny_model
from trainers import MultitaskTrainingArguments

METRICS = with_overall_scores({"sst": {"accuracy": 0.512}, "para": {"accuracy": 0.871},
                               "sts": {"pearson": 0.853, "spearman": 0.849}})


@pytest.fixture
def trained_dir(tmp_path, minilm_path):
    """A saved tiny model with the files `minbert train` leaves: metrics.json, the card and its record."""
    model = tiny_model()
    model.heads["sts"].layers[-1].bias.data.fill_(2.5)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    arguments = MultitaskTrainingArguments(
        output_dir=str(tmp_path), use_cpu=True, smart_weight="sst=2,para=6,sts=8", task_sampling="round_robin",
        mnr_weight=0.5, layerwise_lr_decay=0.95, pair_swap_probability="para=0.5", hub_token="hf_secret_value",
    )
    write_model_card(tmp_path, metrics=METRICS, base_model=minilm_path, training_arguments=arguments,
                     model_arguments=ModelArguments(head_layers="sts=2"), data_arguments=DataArguments(),
                     train_seconds=754.0)
    return tmp_path


def _front_matter(card_text):
    match = re.match(r"---\n(.*?)\n---\n", card_text, flags=re.S)
    assert match, "the card has no YAML front matter"
    return yaml.safe_load(match.group(1))


def _card(path):
    return (path / "README.md").read_text()


def test_model_index_holds_every_metric_and_both_overall_scores_of_metrics_json(trained_dir):
    front = _front_matter(_card(trained_dir))
    reported = {(entry["dataset"]["type"], metric["type"]): metric["value"]
                for entry in front["model-index"][0]["results"] for metric in entry["metrics"]}
    expected = {("SetFit/sst5", "accuracy"): METRICS["sst"]["accuracy"],
                ("nyu-mll/glue", "accuracy"): METRICS["para"]["accuracy"],
                ("sentence-transformers/stsb", "pearson"): METRICS["sts"]["pearson"],
                ("sentence-transformers/stsb", "spearman"): METRICS["sts"]["spearman"],
                ("cs224n-minbert-multitask", "overall"): METRICS["overall"],
                ("cs224n-minbert-multitask", "mean"): METRICS["mean"]}
    assert reported == pytest.approx(expected)


def test_front_matter_gives_the_hub_a_widget_pipeline_and_license(trained_dir):
    front = _front_matter(_card(trained_dir))
    assert front["pipeline_tag"] == "text-classification" and front["license"] == "apache-2.0"
    assert [example["text"] for example in front["widget"]] == list(WIDGET_SENTENCES)


def test_front_matter_names_base_model_datasets_and_library(trained_dir):
    front = _front_matter(_card(trained_dir))
    assert front["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert front["datasets"] == ["SetFit/sst5", "nyu-mll/glue", "sentence-transformers/stsb"]
    assert front["library_name"] == "transformers" and "custom_code" in front["tags"]


def test_body_states_the_training_configuration_time_and_hardware(trained_dir):
    card = _card(trained_dir)
    record = json.loads((trained_dir / TRAINING_CONFIG_FILE).read_text())
    for row in ("| smart_weight | sst=2,para=6,sts=8 |", "| task_sampling | round_robin |", "| mnr_weight | 0.5 |",
                "| layerwise_lr_decay | 0.95 |", "| pcgrad | False |", "| head_layers | sts=2 |",
                "| pair_swap_probability | para=0.5 |"):
        assert row in card
    assert "Training time: 12.6 minutes on " + record["hardware"] in card
    assert "| sts | pearson | 0.8530 |" in card
    assert "**0.7698**" in card  # leaderboard overall: (0.512 + 0.871 + (0.853 + 1) / 2) / 3


def test_card_tells_that_the_base_models_training_data_included_quora(trained_dir):
    assert "include Quora duplicate\n  questions" in _card(trained_dir)


def test_card_shows_the_training_curves_when_the_plot_exists(trained_dir):
    assert "training_curves.png" not in _card(trained_dir)
    (trained_dir / "training_curves.png").write_bytes(b"\x89PNG\r\n")
    regenerate_model_card(trained_dir)
    assert "![training curves](training_curves.png)" in _card(trained_dir)


def test_recorded_configuration_keeps_no_hub_token(trained_dir):
    assert "hf_secret_value" not in (trained_dir / TRAINING_CONFIG_FILE).read_text()


@pytest.mark.slow
def test_usage_snippet_in_the_card_runs_where_hf_minbert_is_not_installed(trained_dir):
    snippet = re.search(r"```python\n(.*?)```", _card(trained_dir), flags=re.S).group(1)
    assert f'model_id = "{trained_dir}"' in snippet
    out = run_isolated(snippet, cwd=trained_dir)
    sentiment, paraphrase, similarity, multitask, *logits = out.strip().splitlines()
    assert re.match(r"\[\{'label': '(somewhat )?(negative|neutral|positive)', 'score': ", sentiment)
    assert re.match(r"\{'label': '(not )?paraphrase', 'score': ", paraphrase)
    assert re.match(r"\{'score': \d", similarity)
    assert multitask.startswith("{'sst': [{'label': ")
    assert logits[0].startswith("tensor([[")


def test_minbert_card_regenerates_the_same_card_from_the_folder(trained_dir, capsys):
    written = _card(trained_dir)
    (trained_dir / "README.md").unlink()
    assert minbert(["card", str(trained_dir)]) == 0
    assert _card(trained_dir) == written


def test_minbert_card_points_the_snippet_at_a_repo_id(trained_dir):
    assert minbert(["card", str(trained_dir), "--model_id", "someone/minbert-mt"]) == 0
    card = _card(trained_dir)
    assert 'model_id = "someone/minbert-mt"' in card and _front_matter(card)["model-index"][0]["name"] == "minbert-mt"


def test_minbert_card_names_the_missing_record_file(trained_dir, capsys):
    (trained_dir / TRAINING_CONFIG_FILE).unlink()
    assert minbert(["card", str(trained_dir)]) == 2
    assert f"{trained_dir / TRAINING_CONFIG_FILE} is missing (written by minbert train)" in capsys.readouterr().err


def test_overall_scores_are_left_out_when_a_task_was_not_scored(trained_dir):
    (trained_dir / "metrics.json").write_text(json.dumps({"sst": {"accuracy": 0.5}}))
    regenerate_model_card(trained_dir)
    card = _card(trained_dir)
    types = {m["type"] for e in _front_matter(card)["model-index"][0]["results"] for m in e["metrics"]}
    assert types == {"accuracy"} and "not scored on all three" in card


def test_the_heads_table_says_which_head_averages_both_pair_orders(trained_dir):
    from hf_minbert import MinBertForMultitask

    model = MinBertForMultitask.from_pretrained(trained_dir)
    model.config.tasks["para"]["average_pair_orders"] = True
    model.save_pretrained(trained_dir)
    regenerate_model_card(trained_dir)
    heads = {line.split(" | ")[0][2:]: line for line in _card(trained_dir).splitlines() if " | pooler | " in line}
    assert "| cross (both orders averaged) |" in heads["para"] and "| cross |" in heads["sts"]
