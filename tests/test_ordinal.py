"""The squared-EMD ordinal loss (trainers/ordinal.py): a wrong grade costs more the farther it lies."""
import pytest
import torch

from hf_minbert import MinBertConfig
from hf_minbert.commands.head_options import task_specs
from hf_minbert.commands.train import check_run
from hf_minbert.commands.train_arguments import DataArguments, ModelArguments
from trainers import MultitaskTrainingArguments
from trainers.ordinal import check_ordinal_task, squared_emd_loss


def _confident(predicted, num_classes=5, margin=30.0):
    """Logits that put (all but) all the mass on `predicted`, one row per entry."""
    logits = torch.zeros(len(predicted), num_classes)
    logits[torch.arange(len(predicted)), torch.tensor(predicted)] = margin
    return logits


def test_squared_emd_counts_the_grades_between_a_confident_prediction_and_its_label():
    # all mass on class 4 for label 0: the CDFs differ by 1 at k = 0, 1, 2, 3
    assert squared_emd_loss(_confident([4]), torch.tensor([0])).item() == pytest.approx(4.0, abs=1e-6)
    assert squared_emd_loss(_confident([1]), torch.tensor([0])).item() == pytest.approx(1.0, abs=1e-6)
    assert squared_emd_loss(_confident([2]), torch.tensor([2])).item() == pytest.approx(0.0, abs=1e-6)


def test_squared_emd_equals_its_formula_on_random_logits():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=generator)
    labels = torch.tensor([0, 4, 2, 1, 3, 2])
    cdf = logits.softmax(-1).cumsum(-1)
    expected = sum(sum((cdf[i, k] - float(k >= labels[i])) ** 2 for k in range(4)) for i in range(6)) / 6
    assert squared_emd_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-6)


def test_squared_emd_reads_probability_rows_as_soft_targets():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 3, 4])
    one_hot = torch.nn.functional.one_hot(labels, 5).float()
    torch.testing.assert_close(squared_emd_loss(logits, one_hot), squared_emd_loss(logits, labels))


def test_squared_emd_of_an_empty_batch_is_zero_and_keeps_the_graph():
    logits = torch.zeros(0, 5, requires_grad=True)
    loss = squared_emd_loss(logits, torch.zeros(0, dtype=torch.long))
    assert loss.item() == 0.0 and loss.requires_grad


def test_squared_emd_skips_rows_labelled_with_the_ignore_index_as_cross_entropy_does():
    logits = torch.randn(3, 5, generator=torch.Generator().manual_seed(2))
    labelled = squared_emd_loss(logits[[0, 2]], torch.tensor([1, 4]))
    torch.testing.assert_close(squared_emd_loss(logits, torch.tensor([1, -100, 4])), labelled)


def test_squared_emd_rejects_labels_outside_the_classes():
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 5\)"):
        squared_emd_loss(torch.zeros(2, 5), torch.tensor([0, 5]))


def test_squared_emd_rejects_fractional_class_labels():
    with pytest.raises(ValueError, match="class labels must be integers"):
        squared_emd_loss(torch.zeros(2, 5), torch.tensor([0.0, 2.5]))


def test_squared_emd_under_bf16_autocast_is_fp32_and_close_to_the_fp32_value():
    logits = torch.randn(8, 5, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 1, 2, 3, 4, 0, 2, 4])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = squared_emd_loss(logits.bfloat16(), labels)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, squared_emd_loss(logits, labels), rtol=2e-2, atol=1e-3)


def test_squared_emd_rejects_labels_of_the_wrong_shape():
    with pytest.raises(ValueError, match="labels must be class indices"):
        squared_emd_loss(torch.zeros(2, 5), torch.zeros(2, 4))


def test_ordinal_task_must_be_a_classification_task_of_the_run():
    specs = {"sst": {"kind": "classification"}, "para": {"kind": "binary"}}
    check_ordinal_task("sst", specs)
    with pytest.raises(ValueError, match=r"--ordinal_task para: .* \(sst\)"):
        check_ordinal_task("para", specs)
    with pytest.raises(ValueError, match="--ordinal_task cola"):
        check_ordinal_task("cola", specs)


def test_minbert_train_refuses_an_ordinal_task_without_classes_before_reading_data(tmp_path):
    specs = task_specs(ModelArguments(), MinBertConfig().tasks)
    args = MultitaskTrainingArguments(output_dir=str(tmp_path / "out"), ordinal_weight=1.0, ordinal_task="sts")
    with pytest.raises(ValueError, match=r"--ordinal_task sts: .*\(sst\)"):
        check_run(ModelArguments(), DataArguments(data_dir=str(tmp_path / "no data here")), args, specs)
