"""The data of a `minbert train` run: each task's training files and dev file, found and read (and checked)
before the model is built; which training rows are trained on (--max_train_samples, --num_folds); and the
records of what was read (skipped bad rows, the rows each file gave) for metrics.json and the card."""
import logging
from pathlib import Path

import numpy as np

from hf_minbert import recipe

# The reads are reported as the train command's own log lines, under its logger's name.
logger = logging.getLogger("minbert.train")


def load_task_data(data_args, tasks):
    """(train, dev, reports): each task's train and dev rows, and the reports of the data read — a
    SourcesReport per task's training sources (rows kept per file, dev rows and overlaps dropped, the rows
    trained on) and a ReadReport per dev file. Skipped bad rows and training rows equal to a dev row are a
    warning on the console; `skipped_rows_record` puts the former in metrics.json and the card,
    `training_data_record` the training rows each file gave."""
    from hf_minbert.data import implies_pairs, read_task_file, read_training_sources, row_texts

    sources, dev_paths = training_sources(data_args, tasks), dev_files(data_args, tasks)
    train, dev, reports = {}, {}, []
    for task in tasks:
        dev_rows, dev_report = read_task_file(dev_paths[task], task, labelled=True, skip_bad_rows=data_args.skip_bad_rows,
                                              max_bad_row_share=data_args.max_bad_row_share)
        dev[task] = _cap(dev_rows, data_args.max_eval_samples)
        _check_scorable(task, dev[task], dev_paths[task], data_args)
        # A training row equal to a dev row would be scored after being trained on: such rows are dropped,
        # from every source (a treebank's phrases, a dev file named among --train_sources).
        rows, report = read_training_sources(task, sources[task], skip_bad_rows=data_args.skip_bad_rows,
                                             exclude_texts=row_texts(dev_rows, task),
                                             phrase_options=_phrase_options(data_args),
                                             max_bad_row_share=data_args.max_bad_row_share,
                                             names_relative_to=data_args.data_dir)
        indices = training_row_indices(len(rows), data_args)
        train[task] = rows if len(indices) == len(rows) else rows.select(indices)
        if data_args.num_folds is not None or len(indices) < len(rows):
            report.select(indices, **_selection(data_args))
        if data_args.implied_pairs_per_question and implies_pairs(task):
            train[task], report.implied = with_implied_pairs(train[task], dev_rows, task, data_args)
        _log_reads(report, dev_report)
        reports += [report, dev_report]
    return train, dev, reports


def _check_scorable(task, rows, path, data_args):
    from hf_minbert.evaluation import unscorable_reason

    reason = unscorable_reason(task, rows)
    if reason:
        capped = f" with --max_eval_samples {data_args.max_eval_samples}" if data_args.max_eval_samples is not None else ""
        raise ValueError(f"{task} dev file {path}{capped}: {reason}")


def dev_files(data_args, tasks):
    """Each task's dev file: --<task>_dev where given (a path as given, as `minbert evaluate` takes it), else
    the course's file in --data_dir. Every file must exist: checked before any is read."""
    from hf_minbert.data import task_schema

    paths = {}
    for task in tasks:
        flag = f"{task}_dev"
        given = getattr(data_args, flag, None)
        paths[task] = Path(given) if given else Path(data_args.data_dir) / task_schema(task).file_name("dev")
        if not paths[task].is_file():
            # A task of one's own has no such flag: its dev file is the data folder's
            another = f" (name another with --{flag})" if hasattr(data_args, flag) else ""
            how = f"--{flag} {given}" if given else f"{task} dev file {paths[task]}{another}"
            raise ValueError(f"{how}: no such file")
    return paths


def _selection(data_args):
    """The settings that choose which of a task's rows are trained on (training_row_indices), for the record."""
    selection = {"max_train_samples": data_args.max_train_samples} if data_args.max_train_samples else {}
    if data_args.num_folds is not None:
        selection.update(num_folds=data_args.num_folds, held_out_fold=data_args.held_out_fold,
                         fold_seed=data_args.fold_seed)
    return selection


def _log_reads(report, dev_report):
    for read in [*(source.read for source in report.sources), dev_report]:
        (logger.warning if read.skipped else logger.info)(str(read))
    logger.info(str(report))
    if report.evaluation_rows_dropped:
        counts = ", ".join(f"{source.name} {source.evaluation_rows_dropped}" for source in report.sources
                           if source.evaluation_rows_dropped)
        logger.warning("%s: dropped %d training row(s) whose text equals a row of the dev file %s (%s): the dev "
                       "scores must not be measured on rows trained on", report.task, report.evaluation_rows_dropped,
                       dev_report.source, counts)


def with_implied_pairs(train, dev, task, data_args):
    """`train` and the pairs its labels imply (none equal to a dev pair): derived from the rows trained on, so
    a held-out fold's or a capped-off row's label implies nothing."""
    import datasets

    from hf_minbert.data import ImpliedPairOptions, implied_pairs, row_texts

    options = ImpliedPairOptions(per_question=data_args.implied_pairs_per_question)
    implied, report = implied_pairs(train, task=task, options=options, exclude_pairs=row_texts(dev, task))
    return datasets.concatenate_datasets([train, implied]), report


def training_source_paths(data_args, tasks):
    """Each task's training files, not yet checked to exist: --train_sources where it names the task, else the
    course's train file plus (with --extra_training_files) the extra files of the data folder."""
    from hf_minbert.data import default_training_sources, parse_task_sources

    defaults = default_training_sources(data_args.data_dir, tasks)
    if not data_args.extra_training_files:
        defaults = {task: paths[:1] for task, paths in defaults.items()}
    try:
        chosen = dict(parse_task_sources(value, data_args.data_dir) for value in data_args.train_sources or ())
    except ValueError as error:
        raise ValueError(f"--train_sources: {error}") from None
    unknown = [task for task in chosen if task not in tasks]
    if unknown:
        raise ValueError(f"--train_sources: {', '.join(unknown)} is not a training task ({', '.join(tasks)})")
    return {task: chosen.get(task, defaults[task]) for task in tasks}


def training_sources(data_args, tasks):
    """`training_source_paths`, every file checked to exist."""
    sources = training_source_paths(data_args, tasks)
    for task, paths in sources.items():
        for path in paths:
            if not Path(path).is_file():
                what = "not a file" if Path(path).exists() else "no such file"
                raise ValueError(f"{task} training source {path}: {what}")
    return sources


def _phrase_options(data_args):
    from hf_minbert.data import PhraseOptions

    return PhraseOptions(min_tokens=data_args.min_phrase_tokens)


def _read_reports(reports):
    """The ReadReport of every file read, from a mix of ReadReports and SourcesReports."""
    reads = []
    for report in reports:
        reads += [source.read for source in report.sources] if hasattr(report, "sources") else [report]
    return reads


def training_data_record(reports, data_args):
    """Per task: the rows its files gave and how many each gave (after dev rows and overlaps were dropped),
    and the pairs their labels imply where those were added. Where --max_train_samples or a held-out fold left
    some out, also the rows trained on (`rows_trained`, `sources_trained`) and the settings (`selection`).
    Each file, the dev file too (`dev`: its name and the rows scored), carries its SHA-256: what identifies a
    known file, such as the course's, by its content rather than by its name or its row count. Files are named
    by their path inside --data_dir, else as given."""
    dev_reads = {report.task: report for report in reports if not hasattr(report, "sources")}
    return {report.task: {**_task_training_record(report),
                          "dev": dev_file_record(dev_reads[report.task], data_args.data_dir, data_args.max_eval_samples)}
            for report in reports if hasattr(report, "sources")}


def _task_training_record(report):
    record = {"rows": report.rows, "overlapping_rows_dropped": report.overlapping_rows,
              "sources": report.rows_per_source()}
    if report.evaluation_rows_dropped:
        record["dev_rows_dropped"] = report.evaluation_rows_dropped
    if report.selected is not None:
        record.update(rows_trained=report.trained_rows, sources_trained=report.trained_rows_per_source(),
                      selection=dict(report.selection))
    if report.implied:
        record["implied_pairs"] = report.implied.rows
    record["sha256"] = {source.name: _read_sha256(source.read) for source in report.sources}
    return record


def dev_file_record(dev_read, data_dir, max_rows=None):
    """A dev file scored: its name (inside `data_dir`, else as given), the rows scored (at most `max_rows`) and
    the SHA-256 of the bytes read — what the card tells the course's dev sets from others by."""
    from hf_minbert.data import source_name

    rows = dev_read.rows if max_rows is None else min(dev_read.rows, max_rows)
    return {"file": source_name(dev_read.source, data_dir), "rows": rows, "sha256": _read_sha256(dev_read)}


def _read_sha256(read) -> str:
    """The SHA-256 of the bytes a reader read (the file now may hold others), else of the file as it is now."""
    return read.sha256 or file_sha256(read.source)


def file_sha256(path) -> str:
    """The hex SHA-256 of a file's bytes (huggingface_hub's blockwise hash, as it hashes uploads)."""
    from huggingface_hub.utils.sha import sha_fileobj

    with open(path, "rb") as stream:
        return sha_fileobj(stream).hex()


def skipped_rows_record(read_reports):
    """Per file with skipped rows: its path, task, how many rows and the first few (line and problem)."""
    return [{"file": report.source, "task": report.task, "count": len(report.skipped),
             "first": [f"{bad.where()}: {bad.problem}" for bad in report.skipped[: report.MAX_SHOWN]]}
            for report in _read_reports(read_reports) if report.skipped]


def _cap(dataset, limit):
    return dataset if limit is None or limit >= len(dataset) else dataset.select(range(limit))


def training_row_indices(num_rows, data_args):
    """Which of a task's training rows are trained on: the first --max_train_samples, less the held-out fold."""
    indices = np.arange(min(num_rows, data_args.max_train_samples or num_rows))
    if data_args.num_folds is None:
        return indices
    from hf_minbert.data import rows_outside_fold

    return indices[rows_outside_fold(len(indices), data_args.num_folds, data_args.held_out_fold, data_args.fold_seed)]


def always_rows(read_reports, data_args):
    """Per task with several training sources: how many of its trained rows come from its first source (which
    lead its rows), for the sampler to read whole every epoch (--first_source_every_epoch)."""
    if not data_args.first_source_every_epoch:
        return {}
    trained = {report.task: training_row_indices(report.rows, data_args)
               for report in read_reports if hasattr(report, "sources")}
    return recipe.first_source_rows(read_reports, trained)
