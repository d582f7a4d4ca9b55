"""The training-curves plot a finished run leaves beside its weights."""


def plot_training_curves(log_history, path) -> bool:
    """Per-task training losses (and the SMART, MNR, CoSENT and ordinal terms) by step, and the dev metrics
    by step, in one PNG. Returns False when there is nothing to plot (no training log yet)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    train = [entry for entry in log_history if "loss" in entry]
    dev = [entry for entry in log_history if any(is_dev_score(k) for k in entry)]
    if not train and not dev:
        return False
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _plot_series(left, train, is_loss_term, "training loss (averaged per log)")
    _plot_series(right, dev, is_dev_score, "dev metrics")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def is_loss_term(key) -> bool:
    """A training log's loss or one of its terms (not the learning rate, the gradient norm or the epoch)."""
    return key == "loss" or key.startswith(("loss_", "smart_", "mnr", "cosent", "ordinal"))


def is_dev_score(key) -> bool:
    """An evaluation's score (not its runtime or speed, which Trainer logs beside the scores)."""
    return key.startswith("eval_") and not key.endswith(("_runtime", "_per_second"))


def _plot_series(axis, entries, wanted, title):
    names = sorted({key for entry in entries for key in entry if wanted(key)})
    for name in names:
        points = [(entry["step"], entry[name]) for entry in entries if name in entry and "step" in entry]
        if points:
            steps, values = zip(*points)
            axis.plot(steps, values, marker="o" if len(points) < 30 else None, label=name)
    axis.set_title(title)
    axis.set_xlabel("optimizer step")
    if names:
        axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
