"""The pairs a paraphrase task's labels imply: duplicates inside a group of duplicates, non-duplicates across
two groups a labelled non-duplicate joins; capped per question, never an evaluation pair or a labelled one."""
import datasets
import pytest

from hf_minbert.commands.train_arguments import DataArguments
from hf_minbert.commands.train_data import always_rows, load_task_data, training_data_record
from hf_minbert.data import DataError, task_schema
from hf_minbert.data.implied_pairs import ImpliedPairOptions, implied_pairs, pair_key
from model_cards.card import _data_summary
from tests.helpers import tiny_task_rows, write_task_files

MANY = ImpliedPairOptions(per_question=100)


def labelled(*pairs):
    """para rows from (a, b, label) triples."""
    return datasets.Dataset.from_dict(
        {"id": [f"q-{index}" for index in range(len(pairs))], "sentence1": [a for a, _, _ in pairs],
         "sentence2": [b for _, b, _ in pairs], "is_duplicate": [float(label) for _, _, label in pairs]},
        features=task_schema("para").features(labelled=True))


def implied(rows, **options):
    dataset, report = implied_pairs(rows, options=ImpliedPairOptions(**options) if options else MANY)
    return {pair_key(a, b): label for a, b, label in
            zip(dataset["sentence1"], dataset["sentence2"], dataset["is_duplicate"])}, report


def test_a_chain_of_duplicates_implies_its_ends_are_duplicates():
    pairs, report = implied(labelled(("A?", "B?", 1), ("B?", "C?", 1)))
    assert pairs == {pair_key("A?", "C?"): 1.0}
    assert (report.duplicates, report.groups, report.largest_group) == (1, 1, 3)


def test_labels_written_as_text_imply_as_their_numbers_do():
    rows = datasets.Dataset.from_dict({"id": ["q-0", "q-1"], "sentence1": ["A?", "B?"], "sentence2": ["B?", "C?"],
                                       "is_duplicate": ["1.0", "1"]})
    pairs, _ = implied(rows)
    assert pairs == {pair_key("A?", "C?"): 1.0}


def test_a_label_that_is_not_the_tasks_is_refused_naming_its_row():
    rows = labelled(("A?", "B?", 1), ("B?", "C?", 1)).cast_column("is_duplicate", datasets.Value("string"))
    rows = datasets.Dataset.from_dict({**rows[:], "is_duplicate": ["1", "yes"]})
    with pytest.raises(DataError, match="row 1, column 'is_duplicate'"):
        implied(rows)


def test_a_non_duplicate_implies_its_sides_duplicates_are_non_duplicates():
    pairs, report = implied(labelled(("A?", "B?", 1), ("B?", "X?", 0)))
    assert pairs == {pair_key("A?", "X?"): 0.0} and report.non_duplicates == 1


def test_pairs_already_labelled_are_not_implied_again_in_either_order_or_case():
    rows = labelled(("A?", "B?", 1), ("B?", "C?", 1), ("c?", " a? ", 1))
    pairs, report = implied(rows)
    assert pairs == {} and report.rows == 0


def test_the_implied_rows_have_exactly_the_para_schema_and_fresh_ids():
    dataset, _ = implied_pairs(labelled(("A?", "B?", 1), ("B?", "C?", 1)), options=MANY)
    assert dataset.features == task_schema("para").features(labelled=True)
    assert dataset["id"] == ["implied-0"]


def test_a_group_gives_at_most_per_question_times_its_size_new_duplicates():
    chain = [(f"Q{index}?", f"Q{index + 1}?", 1) for index in range(9)]  # a group of 10: 36 new pairs
    pairs, report = implied(labelled(*chain), per_question=2)
    assert len(pairs) == 20 and report.capped == 16


def test_which_capped_pairs_are_drawn_depends_on_the_seed_only():
    rows = labelled(*[(f"Q{index}?", f"Q{index + 1}?", 1) for index in range(9)])
    first, again, other = (implied(rows, per_question=1, seed=seed)[0] for seed in (0, 0, 1))
    assert first == again and first != other


def test_zero_per_question_implies_nothing():
    pairs, report = implied(labelled(("A?", "B?", 1), ("B?", "C?", 1), ("C?", "X?", 0)), per_question=0)
    assert pairs == {} and report.capped == 3


def test_an_evaluation_pair_is_never_implied_in_either_order():
    rows = labelled(("A?", "B?", 1), ("B?", "C?", 1), ("C?", "D?", 1))
    dataset, report = implied_pairs(rows, options=MANY, exclude_pairs=[("C?", "A?"), ("B?", "D?")])
    keys = {pair_key(a, b) for a, b in zip(dataset["sentence1"], dataset["sentence2"])}
    assert keys == {pair_key("A?", "D?")} and report.excluded == 2


def test_a_group_whose_labels_contradict_each_other_implies_nothing():
    rows = labelled(("A?", "B?", 1), ("B?", "C?", 1), ("A?", "C?", 0), ("C?", "X?", 0), ("D?", "E?", 1),
                    ("E?", "F?", 1))
    pairs, report = implied(rows)
    assert pairs == {pair_key("D?", "F?"): 1.0} and report.contradictory_groups == 1


def test_the_report_says_what_was_implied_and_left_out():
    rows = labelled(*[(f"Q{index}?", f"Q{index + 1}?", 1) for index in range(4)], ("Q0?", "X?", 0))
    _, report = implied_pairs(rows, options=ImpliedPairOptions(per_question=1))
    assert str(report) == ("pairs implied by the labels: 9 para rows from 5 labelled pairs: 5 duplicates inside 1 "
                           "groups of three or more questions (largest 5), 4 non-duplicates across groups; "
                           "1 over the per-question cap")
    assert report.as_dict()["duplicates"] == 5


def test_a_graded_pair_task_is_refused():
    rows = datasets.Dataset.from_dict({"id": ["s"], "sentence1": ["A"], "sentence2": ["B"], "similarity": [3.0]},
                                      features=task_schema("sts").features(labelled=True))
    with pytest.raises(ValueError, match="duplicate .* not sts"):
        implied_pairs(rows, task="sts")


@pytest.mark.parametrize("per_question", [-1, float("nan")])
def test_a_negative_or_nan_per_question_is_refused(per_question):
    with pytest.raises(ValueError, match="per question must be >= 0"):
        ImpliedPairOptions(per_question=per_question)


# --- minbert train ---

CHAIN = [("A?", "B?", 1), ("B?", "C?", 1), ("C?", "D?", 1), ("D?", "X?", 0)]


@pytest.fixture(scope="module")
def chained_quora(tmp_path_factory):
    """Course-format task files whose Quora training pairs chain A ≡ B ≡ C ≡ D ≢ X; dev holds (A, C)."""
    folder = tmp_path_factory.mktemp("chained")
    write_task_files(folder, tiny_task_rows(n=8, seed=1), split="train")
    write_task_files(folder, tiny_task_rows(n=8, seed=2), split="dev")
    write_task_files(folder, {"para": labelled(*CHAIN, ("P?", "Q?", 0))}, split="train")
    write_task_files(folder, {"para": labelled(("A?", "C?", 1), ("M?", "N?", 0))}, split="dev")
    return folder


def implied_keys(train):
    rows = train["para"].filter(lambda row: row["id"].startswith("implied-"))
    return {pair_key(a, b): label for a, b, label in zip(rows["sentence1"], rows["sentence2"], rows["is_duplicate"])}


def test_train_adds_the_implied_pairs_after_the_files_rows_but_none_equal_to_a_dev_pair(chained_quora):
    train, _, reports = load_task_data(DataArguments(data_dir=str(chained_quora), implied_pairs_per_question=10),
                                       ["para"])
    assert train["para"]["id"][:5] == [f"q-{index}" for index in range(5)]
    assert implied_keys(train) == {pair_key("A?", "D?"): 1.0, pair_key("B?", "D?"): 1.0, pair_key("A?", "X?"): 0.0,
                                   pair_key("B?", "X?"): 0.0, pair_key("C?", "X?"): 0.0}
    assert reports[0].implied.excluded == 1


def test_implied_pairs_per_question_zero_adds_none(chained_quora):
    train, _, reports = load_task_data(DataArguments(data_dir=str(chained_quora), implied_pairs_per_question=0),
                                       ["para"])
    assert implied_keys(train) == {} and reports[0].implied is None


def test_only_the_rows_trained_on_imply_pairs(chained_quora):
    args = DataArguments(data_dir=str(chained_quora), implied_pairs_per_question=10, max_train_samples=2)
    train, _, _ = load_task_data(args, ["para"])  # A ≡ B ≡ C: (A, C) is a dev pair, nothing else follows
    assert implied_keys(train) == {}


def test_implied_pairs_leave_the_first_sources_count_of_rows_read_each_epoch(chained_quora):
    args = DataArguments(data_dir=str(chained_quora), implied_pairs_per_question=10,
                         train_sources=["para=quora-train.csv,quora-dev.csv"])
    _, _, reports = load_task_data(args, ["para"])
    assert always_rows(reports, args) == {"para": 5}


def test_metrics_and_card_count_the_implied_pairs_beside_the_files(chained_quora):
    args = DataArguments(data_dir=str(chained_quora), implied_pairs_per_question=10)
    _, _, reports = load_task_data(args, ["para"])
    record = training_data_record(reports, args)
    assert {key: record["para"][key] for key in ("rows", "sources", "implied_pairs")} == {
        "rows": 5, "sources": {"quora-train.csv": 5}, "implied_pairs": 5}
    assert _data_summary({}, record) == "para 10 rows (`quora-train.csv` 5, 5 pairs implied by the labels)"



def test_a_pair_task_whose_order_matters_implies_no_pairs(tmp_path):
    """Entailment is no equivalence: A entails B and B entails C says nothing of (C, A)."""
    from hf_minbert.data import TASK_SCHEMAS, TaskSchema, register_task_schema

    register_task_schema(TaskSchema("rte", ("premise", "hypothesis"), "label", "int64", label_values=(0, 1)))
    try:
        header = "\tid\tpremise\thypothesis\tlabel\n"
        (tmp_path / "rte-train.csv").write_text(header + "0\tr-0\tA?\tB?\t1\n1\tr-1\tB?\tC?\t1\n2\tr-2\tC?\tX?\t0\n")
        (tmp_path / "rte-dev.csv").write_text(header + "0\td-0\tA?\tX?\t0\n1\td-1\tX?\tB?\t1\n")
        train, _, reports = load_task_data(DataArguments(data_dir=str(tmp_path), implied_pairs_per_question=10), ["rte"])
    finally:
        TASK_SCHEMAS.pop("rte")
    assert train["rte"]["id"] == ["r-0", "r-1", "r-2"] and reports[0].implied is None
