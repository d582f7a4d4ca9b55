"""`minbert evaluate`: score a saved model on the dev sets and write predictions in the course's format.

    minbert evaluate --model DIR --data_dir DIR --output_dir DIR

For each task (by default the model's own: sst, para, sts) it reads the dev file (labelled) and the test-student file
(unlabelled) from --data_dir, or the files given with --<task>_dev / --<task>_test, and writes:

    <task>-dev-output.csv, <task>-test-output.csv
                   the course's submission format: a header line "id \\t Predicted_Sentiment "
                   (Predicted_Is_Paraphrase; Predicted_Similiarity, the course's own spelling, kept so that
                   files stay interchangeable with its scripts), then "id , value " rows: class numbers for
                   sst and para, the similarity as a float written exactly (it reads back bit for bit)
    metrics.json   {"sst": {"accuracy"}, "para": {"accuracy"}, "sts": {"pearson", "spearman"},
                    "overall": leaderboard score, "mean": plain mean,   (overall/mean need all three tasks)
                    "skipped_rows": the bad rows --skip_bad_rows skipped, per file}

Prediction files an earlier run left in --output_dir that this run does not write are removed (and named), so
that the folder holds one model's answers.

--average_pair_orders TASK scores a cross-encoded pair task with the mean of the head's outputs for both
orders of each pair, as a model trained with that flag does (the model's files are not changed).

A file named on the command line must exist. A default test file that is absent (this data folder has
no quora-test-student.csv) is reported and skipped; a default dev file that is absent is an error.

The model must carry trained heads for the tasks it is scored on: a plain BERT checkpoint (or any folder
whose weights lack a task's head) would be scored with randomly initialized heads, so it is refused unless
--allow_untrained_heads says that is meant. --model is a local folder or a Hub repository id; a path that is
neither is "no such directory", and an unreadable weights file is named.
"""
import argparse
import contextlib
import sys
from pathlib import Path

from safetensors import SafetensorError
from transformers import AutoTokenizer
from transformers.utils import logging as transformers_logging

from hf_minbert.commands.common import (
    CommandError,
    check_list_flags_once,
    check_model_source,
    check_named_once,
    check_tokenizer_fits,
    first_line,
    home_path,
    positive_int,
    readable_weights,
    register_folder_schemas,
    torch_device,
)
from hf_minbert.commands.output_folder import check_writable
from hf_minbert.commands.train_data import skipped_rows_record
from hf_minbert.configuration_minbert import DEFAULT_TASKS
from hf_minbert.data import TASK_SCHEMAS, DataError, read_task_file
from hf_minbert.ensemble import load_multitask_model
from hf_minbert.evaluation import (
    evaluate_task,
    resolve_max_length,
    unscorable_reason,
    write_metrics_json,
    write_prediction_file,
)
from hf_minbert.metrics import with_overall_scores
from model_cards.run_record import SELECTION_FILE, TRAINING_CONFIG_FILE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=home_path, required=True, help="saved model directory (save_pretrained output)")
    parser.add_argument("--tokenizer", type=home_path, default=None, help="tokenizer directory (default: --model)")
    parser.add_argument("--data_dir", type=home_path, default="../shared/data", help="folder with the CS224N task files (default: "
                        "../shared/data, as for minbert train)")
    parser.add_argument("--output_dir", type=home_path, required=True, help="where prediction files and metrics.json go")
    parser.add_argument("--tasks", nargs="+", default=None, choices=list(TASK_SCHEMAS),
                        help="tasks to score (default: every task the model has a head for); the choices "
                             "are the course's and, with --model given, the tasks of one's own saved with it")
    for task in TASK_SCHEMAS:
        parser.add_argument(f"--{task}_dev", type=home_path, default=None, help=f"labelled {task} file (default: data_dir's)")
        parser.add_argument(f"--{task}_test", type=home_path, default=None, help=f"unlabelled {task} file (default: data_dir's)")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="examples per forward pass")
    parser.add_argument("--max_length", type=positive_int, default=None,
                        help="truncate inputs to this many tokens (default: the longest the model and tokenizer "
                        "accept); the count of truncated examples is printed")
    parser.add_argument("--bf16", action="store_true", help="run the model under bfloat16 autocast")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--skip_bad_rows", action="store_true",
                        help="skip rows that break a task's schema (and report their count) instead of failing")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    parser.add_argument("--average_pair_orders", nargs="+", default=[], metavar="TASK",
                        help="score these cross-encoded pair tasks with the mean of the head's outputs for (a, b) "
                        "and (b, a), as a model trained with --average_pair_orders does")
    parser.add_argument("--allow_untrained_heads", action="store_true",
                        help="score task heads that are not in the checkpoint (randomly initialized) instead of refusing")
    return parser


def model_tasks(model) -> list:
    """The tasks a saved model answers that have a task file format, read from its config alone (before any
    data or weights): a multitask model's heads, an ensemble's weighted tasks; a checkpoint with neither
    (a plain BERT), the course's three tasks, which the untrained-heads check then refuses."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(model)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read the config of --model {model}: {first_line(error)}") from None
    heads = config.get("tasks") or config.get("task_weights")
    if not heads:
        return list(DEFAULT_TASKS)  # the heads a checkpoint without its own gets
    tasks = [task for task in TASK_SCHEMAS if task in heads]  # in the usual order: a saved config sorts its keys
    if not tasks:
        raise CommandError(f"--model {model} answers {', '.join(heads)}, none a task with a file format "
                           f"({', '.join(TASK_SCHEMAS)}): nothing to score")
    return tasks


def check_output_dir(output_dir):
    """A folder to write to, checked before any prediction; a trained model's or an ensemble's folder keeps its
    record in metrics.json, which its card reads."""
    if Path(output_dir).exists() and not Path(output_dir).is_dir():
        raise CommandError(f"--output_dir {output_dir} is a file, not a folder")
    for record, kind in ((TRAINING_CONFIG_FILE, "a trained model"), (SELECTION_FILE, "an ensemble")):
        if (Path(output_dir) / record).exists():
            raise CommandError(f"--output_dir {output_dir} holds {kind} whose metrics.json is its record: write the "
                               "scores to another folder")
    try:
        check_writable(output_dir, f"--output_dir {output_dir}")
    except ValueError as error:
        raise CommandError(str(error)) from None


def resolve_files(args) -> list:
    """(task, split, path) for every file to score; dev files are required, default test files optional."""
    files = []
    for task in args.tasks:
        for split in ("dev", "test"):
            explicit = getattr(args, f"{task}_{split}")
            if explicit is not None:
                files.append((task, split, Path(explicit)))  # must exist: read_task_file says so if not
                continue
            path = Path(args.data_dir) / TASK_SCHEMAS[task].file_name(split)
            if split == "test" and not path.is_file():
                print(f"note: no {task} test file at {path}; {task}-test-output.csv is not written")
                continue
            files.append((task, split, path))
    return files


def read_files(files, skip_bad_rows) -> list:
    """(task, split, dataset, report) per file; all are read before any prediction, so bad data fails fast."""
    read = []
    for task, split, path in files:
        try:
            dataset, report = read_task_file(path, task, labelled=split == "dev", skip_bad_rows=skip_bad_rows)
        except (DataError, FileNotFoundError) as error:
            raise CommandError(str(error)) from None
        reason = unscorable_reason(task, dataset) if split == "dev" else None
        if reason:
            raise CommandError(f"{path}: {reason}")
        read.append((task, split, dataset, report))
    return read


@contextlib.contextmanager
def quiet_load_report():
    """No load report and no loading bar from transformers: an error about the model must be the one line printed."""
    verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


def word_table_rows(model):
    """The rows of the smallest word table in `model` (a Triple-BERT has one per task, an ensemble one per member)."""
    return min(module.num_embeddings for name, module in model.named_modules() if name.endswith("word_embeddings"))


def untrained_heads(loading_info, tasks):
    """The tasks among `tasks` whose head weights the checkpoint lacked (freshly initialized on load)."""
    missing = set()
    for key in loading_info.get("missing_keys", ()):
        parts = key.split(".")
        if "heads" in parts[:-1]:
            missing.add(parts[parts.index("heads") + 1])
    return [task for task in tasks if task in missing]


def average_pair_orders(model, tasks):
    """Turn on `average_pair_orders` for `tasks` in the loaded model (a single model's cross-encoder heads)."""
    from trainers.pair_order import check_pair_order

    for task in tasks:
        spec = model.config.tasks.get(task)
        if spec is None:
            raise CommandError(f"--average_pair_orders {task}: the model has no such head; its tasks: "
                               f"{', '.join(model.config.tasks)}")
        if not hasattr(model, "heads"):
            raise CommandError(f"--average_pair_orders {task}: an ensemble averages its members' answers; turn it "
                               "on in the members before building the ensemble")
        try:
            check_pair_order("average_pair_orders", task, spec["pair_encoding"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        spec["average_pair_orders"] = True


def load_model(args, device):
    check_model_source("--model", args.model)
    if args.tokenizer is not None:
        check_model_source("--tokenizer", args.tokenizer)
    try:
        with quiet_load_report(), readable_weights(f"--model {args.model}"):  # what the report lists is checked below
            model, loading_info = load_multitask_model(args.model, output_loading_info=True)  # a model or an ensemble
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    except CommandError:
        raise
    except (OSError, ValueError, SafetensorError) as error:
        sources = [args.model] if args.tokenizer is None else [args.model, args.tokenizer]
        where = "" if all(Path(source).is_dir() for source in sources) else (
            " (no such directory; tried it as a Hub repository id)")
        raise CommandError(f"cannot load the model or tokenizer from {' / '.join(sources)}{where}: "
                           f"{first_line(error)}") from None
    check_tokenizer_fits(args.tokenizer or args.model, tokenizer, word_table_rows(model))
    if args.tokenizer is not None:
        check_same_vocabulary(args, tokenizer)
    model = model.to(device)
    missing = [task for task in args.tasks if task not in model.config.tasks]
    if missing:
        known = ", ".join(model.config.tasks)
        raise CommandError(f"model {args.model} has no head for {missing}; its tasks: {known}")
    average_pair_orders(model, args.average_pair_orders)
    untrained = untrained_heads(loading_info, args.tasks)
    if untrained and not args.allow_untrained_heads:
        raise CommandError(
            f"{args.model} holds no trained head for {', '.join(untrained)} (not in the checkpoint: they would be "
            "randomly initialized and their scores meaningless); evaluate a model trained with `minbert train`, "
            "or pass --allow_untrained_heads"
        )
    if untrained:
        print(f"note: scoring untrained (randomly initialized) heads: {', '.join(untrained)}")
    others = [key for key in loading_info.get("missing_keys", ()) if "heads" not in key.split(".")[:-1]]
    if others:
        print(f"note: {len(others)} weight(s) not in the checkpoint were randomly initialized, e.g. {others[0]}")
    try:
        resolve_max_length(model, tokenizer, args.max_length)
    except ValueError as error:
        raise CommandError(f"--max_length: {error}") from None
    return model, tokenizer


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    register_folder_schemas(argv, "--model")  # a CommandError: one line, printed by the dispatcher
    parser = build_parser()
    check_list_flags_once(parser, argv)
    args = parser.parse_args(argv)
    try:
        device = torch_device("--device", args.device)
        check_named_once("--tasks", args.tasks or ())
        check_output_dir(args.output_dir)
        if args.tasks is None:
            check_model_source("--model", args.model)
            args.tasks = model_tasks(args.model)
        check_task_flags_apply(args)
        inputs = read_files(resolve_files(args), args.skip_bad_rows)
        model, tokenizer = load_model(args, device)
    except CommandError as error:
        print(f"minbert evaluate: {error}", file=sys.stderr)
        return 2
    predict_kwargs = dict(batch_size=args.batch_size, max_length=args.max_length, bf16=args.bf16,
                          progress=not args.no_progress)
    table = [(task, split, read_report, evaluate_task(model, tokenizer, dataset, task, **predict_kwargs))
             for task, split, dataset, read_report in inputs]
    metrics = with_overall_scores({task: result.metrics for task, _, _, result in table if result.metrics is not None})
    metrics["skipped_rows"] = skipped_rows_record([read_report for _, _, read_report, _ in table])
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = {prediction_file_name(task, split): result for task, split, _, result in table}
    clear_earlier_predictions(output_dir, keep=written)
    for name, result in written.items():
        write_prediction_file(output_dir / name, result.predictions.task, result.predictions.ids, result.labels)
    write_metrics_json(output_dir / "metrics.json", metrics)
    print(format_table(table, metrics))
    print(f"wrote predictions and metrics.json to {output_dir}")
    return 0


def check_same_vocabulary(args, tokenizer):
    """--tokenizer beside a model folder that holds its own tokenizer must give the same word ids: a smaller
    tokenizer of another model fits the word table and would be scored silently on other words."""
    folder = Path(args.model)
    if not any((folder / name).is_file() for name in ("tokenizer.json", "vocab.txt")):  # a folder without its words:
        return  # what --tokenizer is for
    try:
        own = AutoTokenizer.from_pretrained(args.model)
    except (OSError, ValueError):
        return  # nothing to compare with
    theirs, ours = tokenizer.get_vocab(), own.get_vocab()
    if theirs != ours:
        differing = len(set(theirs.items()) ^ set(ours.items()))
        raise CommandError(f"--tokenizer {args.tokenizer}: its vocabulary differs from the tokenizer saved with --model "
                           f"{args.model} ({differing} entries differ), so the model would read other word ids; "
                           "leave --tokenizer out to use the model's own")


def check_task_flags_apply(args):
    """A file or option given for a task that is not scored would be ignored: a typo in --tasks, or in the flag."""
    for task in TASK_SCHEMAS:
        for flag in (f"{task}_dev", f"{task}_test"):
            if getattr(args, flag, None) is not None and task not in args.tasks:
                raise CommandError(f"--{flag}: {task} is not among the tasks scored ({', '.join(args.tasks)})")
    for task in args.average_pair_orders or ():
        if task not in args.tasks:
            raise CommandError(f"--average_pair_orders {task}: {task} is not among the tasks scored "
                               f"({', '.join(args.tasks)})")


def prediction_file_name(task, split):
    return f"{task}-{split}-output.csv"


def clear_earlier_predictions(output_dir, keep):
    """Delete the prediction files an earlier run left in `output_dir` that this one does not write (another
    model's answers beside this one's would be zipped up together); each one is named on the console."""
    for task in TASK_SCHEMAS:
        for split in ("dev", "test"):
            path = output_dir / prediction_file_name(task, split)
            if path.name not in keep and path.is_file():
                path.unlink()
                print(f"removed {path}: an earlier run's predictions, which this run does not replace")


def format_table(rows, metrics) -> str:
    """One line per scored file, then the overall scores."""
    width = max([7, *(len(task) + 1 for task, *_ in rows)])  # a task of one's own may have a longer name
    lines = [f"{'task':<{width}}{'split':<6}{'rows':>7}{'skipped':>9}{'truncated':>11}  metrics", "-" * (width + 57)]
    for task, split, read_report, result in rows:
        scores = "  ".join(f"{name} {value:.4f}" for name, value in (result.metrics or {}).items()) or "(no labels)"
        lines.append(f"{task:<{width}}{split:<6}{read_report.rows:>7}{len(read_report.skipped):>9}"
                     f"{result.predictions.truncation.truncated:>11}  {scores}")
    for read_report in (row[2] for row in rows if row[2].skipped):
        lines.append(f"skipped: {read_report}")
    if "overall" in metrics:
        lines.append(f"{'overall, leaderboard: (sst + para + (sts_pearson + 1) / 2) / 3':<66}{metrics['overall']:.4f}")
        lines.append(f"{'mean: (sst + para + sts_pearson) / 3':<66}{metrics['mean']:.4f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
