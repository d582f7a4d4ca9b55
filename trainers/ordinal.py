"""An ordinal loss for classes that have an order, such as SST's five sentiment grades.

Cross-entropy treats SST's classes as unrelated: putting the mass of a "positive" sentence on "somewhat
positive" costs as much as putting it on "negative". The squared Earth Mover's Distance (Hou, Yu & Samaras
2016) compares the cumulative distributions instead, so the cost of a wrong grade grows with its distance:

    loss = mean_i  sum_{k < C-1}  (P_i(class <= k) - T_i(class <= k))^2

where P is the softmax of the logits and T the target (one-hot, or a teacher's probabilities). It is
added beside the head's cross-entropy: both are lowest at the true class distribution, but where the model
cannot reach it the distance term prefers errors near the right grade, which can change what it predicts.
"""
import torch
from torch import Tensor

IGNORE_INDEX = -100  # cross-entropy's: a row the classification head's loss skips, and so does this one


def squared_emd_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Squared EMD between softmax(logits) (B, C) and the targets: class indices (B,) or probability rows
    (B, C); rows labelled -100 are skipped, as the head's cross-entropy skips them. Computed in fp32 outside
    autocast; a batch without rows to score gives a zero that depends on the logits."""
    if logits.dim() != 2 or logits.shape[-1] < 2:
        raise ValueError(f"logits must have shape (batch, classes >= 2), got {tuple(logits.shape)}")
    num_classes = logits.shape[-1]
    if labels.dim() == 1:
        if labels.shape[0] != logits.shape[0]:
            raise ValueError(f"labels must have shape ({logits.shape[0]},), got {tuple(labels.shape)}")
        scored = labels != IGNORE_INDEX
        logits, labels = logits[scored], labels[scored]
        if labels.is_floating_point() and not bool((labels == labels.round()).all()):
            raise ValueError("class labels must be integers")
        if bool(((labels < 0) | (labels >= num_classes)).any()):
            raise ValueError(f"class labels must lie in [0, {num_classes}), got values {labels.unique().tolist()}")
        targets = torch.nn.functional.one_hot(labels.long(), num_classes)
    elif labels.shape == logits.shape:
        targets = labels
    else:
        raise ValueError(f"labels must be class indices ({logits.shape[0]},) or probability rows "
                         f"{tuple(logits.shape)}, got {tuple(labels.shape)}")
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    with torch.autocast(device_type=logits.device.type, enabled=False):
        predicted = logits.float().softmax(-1).cumsum(-1)[:, :-1]  # the last entry is 1 on both sides
        wanted = targets.float().cumsum(-1)[:, :-1]
        return (predicted - wanted).square().sum(-1).mean()


def check_ordinal_task(task: str, specs: dict) -> None:
    """--ordinal_task names a classification task among `specs` ({task: head spec}); else a one-line error."""
    spec = specs.get(task)
    if spec is None or spec["kind"] != "classification":
        choices = [name for name, s in specs.items() if s["kind"] == "classification"]
        raise ValueError(f"--ordinal_task {task}: the ordinal loss needs a classification task among the training "
                         f"tasks ({', '.join(choices) or 'none'})")
