"""`minbert ensemble`: pick ensemble members per task by greedy forward selection on the dev sets (or take
them all, equally weighted), and save the ensemble as one model folder.

    minbert ensemble --models runs/a runs/b runs/c --output_dir runs/ensemble --data_dir ../shared/data
    minbert ensemble --selection all --models runs/a runs/b runs/c --output_dir runs/average

Every model predicts each task's dev set once; selection then averages those unrounded predictions (class
probabilities, paraphrase probability, similarity) per task (see hf_minbert.ensemble). The output folder is
a MinBertEnsembleForMultitask (weights, config, remote code, the first model's tokenizer) that `minbert
evaluate` and `AutoModel.from_pretrained(..., trust_remote_code=True)` load, plus:

    metrics.json              the ensemble's dev metrics (optimistic under greedy selection, where the dev
                              set also chose the members; fair under --selection all), and `dev_data`:
                              each dev file scored, with its rows and SHA-256 (the card names the dev sets by it)
    ensemble_selection.json   per task: members and weights, every candidate's own dev score, each step,
                              and `held_out`: selection cross-fitted over --held_out_folds parts of the dev
                              rows, the ensemble and the best single model each scored on rows that did not
                              choose them (with `held_out_overall` when sst, para and sts are all there),
                              and `error_correlation`: how alike each pair of candidates errs on dev
    README.md                 the model card: dev metrics, the members with their weights and own dev scores

The output folder is checked before any model predicts, and written as `minbert train` writes its own
(output_folder.py): aside in `<output_dir>.partial`, moved in complete. It may not be one of --models (nor
hold one, nor --data_dir), and a folder that already holds a model is replaced only with --overwrite_output_dir.
"""
import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from transformers import PretrainedConfig

from hf_minbert.commands.common import (
    CommandError,
    check_list_flags_once,
    check_model_source,
    check_named_once,
    check_tokenizer_fits,
    first_line,
    has_trained_task_heads,
    home_path,
    load_tokenizer,
    positive_int,
    readable_weights,
    register_folder_schemas,
    torch_device,
)
from hf_minbert.commands.head_options import in_course_order
from hf_minbert.commands.output_folder import (
    check_output_folder,
    discard_unfinished_run,
    move_into_place,
    staging_folder,
)
from hf_minbert.commands.train_data import dev_file_record
from hf_minbert.data import TASK_SCHEMAS, DataError, read_task_file
from hf_minbert.ensemble import (
    SELECTION_METHODS,
    average_scores,
    build_ensemble,
    ensemble_task_weights,
    error_correlation,
    held_out_scores,
    load_multitask_model,
)
from hf_minbert.evaluation import (
    gold_labels,
    predict_task,
    predictions_to_labels,
    score_task,
    unscorable_reason,
    write_metrics_json,
    write_strict_json,
)
from hf_minbert.metrics import leaderboard_score, with_overall_scores
from hf_minbert.modeling_minbert_ensemble import MinBertEnsembleConfig
from model_cards import regenerate_model_card
from model_cards.run_record import SELECTION_FILE

# Text whose tokenization must agree between members: case, accents, punctuation, a rare word.
TOKENIZER_PROBE = "Paraphrase? It's naïve, UNBELIEVABLY so: 3.5 stars — co-operative!"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minbert ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", type=home_path, required=True, help="saved multitask model folders (the candidates)")
    parser.add_argument("--output_dir", type=home_path, required=True, help="where the ensemble is saved")
    parser.add_argument("--overwrite_output_dir", action="store_true",
                        help="replace an --output_dir that already holds a model (refused otherwise)")
    parser.add_argument("--data_dir", type=home_path, default="../shared/data", help="folder with the CS224N dev files")
    parser.add_argument("--tasks", nargs="+", default=None, choices=list(TASK_SCHEMAS),
                        help="tasks to ensemble (default: every task a model has a head for, the course's first)")
    parser.add_argument("--selection", choices=list(SELECTION_METHODS), default="greedy",
                        help="greedy: forward selection by dev score per task (default); all: every model, equal weights")
    parser.add_argument("--with_replacement", action="store_true",
                        help="greedy: a model may be picked again (weight = times picked); default: each at most once")
    parser.add_argument("--max_members", type=positive_int, default=None,
                        help="greedy: at most this many picks per task (default: until no candidate helps)")
    parser.add_argument("--held_out_folds", type=positive_int, default=2,
                        help="cross-fit selection over this many parts of the dev rows to score it on unseen rows (>= 2)")
    parser.add_argument("--batch_size", type=positive_int, default=64, help="examples per forward pass")
    parser.add_argument("--max_length", type=positive_int, default=None, help="truncate inputs to this many tokens")
    parser.add_argument("--bf16", action="store_true", help="predict under bfloat16 autocast")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--skip_bad_rows", action="store_true", help="skip (and report) malformed dev rows")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    return parser


def read_dev_sets(args) -> tuple:
    """(dev rows, dev records): each task's dev rows from --data_dir, and what was read of each file (its name,
    rows and SHA-256), which metrics.json keeps as `dev_data` for the card."""
    dev, records = {}, {}
    for task in args.tasks:
        path = Path(args.data_dir) / TASK_SCHEMAS[task].file_name("dev")
        try:
            dev[task], report = read_task_file(path, task, labelled=True, skip_bad_rows=args.skip_bad_rows)
        except (DataError, FileNotFoundError) as error:
            raise CommandError(str(error)) from None
        reason = unscorable_reason(task, dev[task])
        if reason:
            raise CommandError(f"{path}: {reason}")
        records[task] = dev_file_record(report, args.data_dir)
    return dev, records


def shared_tokenizer(model_dirs):
    """The first model's tokenizer, after checking that every model tokenizes text the same way: members of
    one ensemble read the very same input ids."""
    tokenizers = [load_tokenizer(path) for path in model_dirs]
    reference = tokenizers[0]
    for path, tokenizer in zip(model_dirs[1:], tokenizers[1:]):
        if tokenizer.get_vocab() != reference.get_vocab() or tokenizer(TOKENIZER_PROBE)["input_ids"] != reference(TOKENIZER_PROBE)["input_ids"]:
            raise CommandError(f"{path} tokenizes differently from {model_dirs[0]}: ensemble members must share a tokenizer")
    return reference


def candidate_heads(args) -> tuple:
    """({task: {model folder: its head's spec}}, the candidates' word-table size), from the folders' configs
    before any dev row is read or predicted: every --models entry must be a trained multitask model folder (or a
    Hub id), not an ensemble, the candidates share one word-table size, and the candidates for a task must answer
    alike (head_answer), since their answers are averaged."""
    from hf_minbert import MinBertConfig

    heads, vocab_sizes, dtypes = {task: {} for task in args.tasks}, {}, {}
    for path in args.models:
        check_model_source("--models", path)
        try:
            config_dict, _ = PretrainedConfig.get_config_dict(path)  # read once, as saved
        except OSError as error:
            raise CommandError(f"cannot load a model from {path}: {first_line(error)}") from None
        if config_dict.get("model_type") == MinBertEnsembleConfig.model_type:
            raise CommandError(f"{path} is already an ensemble; pass its member models instead")
        if not has_trained_task_heads(config_dict):  # its answers would come from freshly drawn heads
            architecture = ", ".join(config_dict.get("architectures") or ["model"])
            raise CommandError(f"{path}: a {architecture} without trained task heads: a candidate must be a trained "
                               "multitask model (minbert train's output)")
        _check_weights(path)
        vocab_sizes[path] = config_dict.get("vocab_size")
        dtypes[path] = config_dict.get("dtype") or config_dict.get("torch_dtype") or "float32"
        try:
            tasks = MinBertConfig.from_dict(config_dict).tasks
        except ValueError as error:
            raise CommandError(f"cannot load a model from {path}: {first_line(error)}") from None
        for task in args.tasks:
            if task in tasks:
                heads[task][path] = tasks[task]
            else:
                print(f"note: {path} has no {task} head; it is not a {task} candidate")
    if len(set(vocab_sizes.values())) > 1:  # the members read the same input ids from one word table each
        listed = "; ".join(f"{path}: {size}" for path, size in vocab_sizes.items())
        raise CommandError(f"the --models' word tables differ in size, so they cannot read the same input ids: {listed}")
    if len(set(dtypes.values())) > 1:  # one ensemble holds its members in one precision, scored as saved
        listed = "; ".join(f"{path}: {dtype}" for path, dtype in dtypes.items())
        raise CommandError(f"the --models are saved in different precisions, and their ensemble would hold them all in "
                           f"the first's (each scored in its own): {listed}; save them in one")
    for task, by_model in heads.items():
        _check_alike(task, by_model)
    return heads, next(iter(vocab_sizes.values()))


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


def _check_weights(path):
    """A local model folder must hold weights (a Hub id is checked when it loads)."""
    folder = Path(path)
    if folder.is_dir() and not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise CommandError(f"{path} holds no weights ({', '.join(WEIGHT_FILES)})")


def head_answer(spec) -> str:
    """What a head answers, which the candidates for its task must share: its kind, and its classes or range."""
    if spec["kind"] == "classification":
        return f"{len(spec['labels'])}-class classification"
    if spec["kind"] == "regression":
        return f"regression over {spec['label_range']}"
    return spec["kind"]


def _check_alike(task, heads):
    if not heads:
        raise CommandError(f"no model has a {task} head")
    answers = {path: head_answer(spec) for path, spec in heads.items()}
    if len(set(answers.values())) > 1:
        listed = "; ".join(f"{path}: {answer}" for path, answer in answers.items())
        raise CommandError(f"the --models' {task} heads differ, so their {task} answers cannot be averaged: {listed}")


def load_candidate(path, device):
    try:
        with readable_weights(path):
            return load_multitask_model(path).to(device)
    except CommandError:
        raise
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot load a model from {path}: {first_line(error)}") from None


def predict_candidates(args, dev, tokenizer, device, heads):
    """{task: {model folder: dev predictions}} of the candidates in `heads`, one model in memory at a time."""
    predictions = {task: {} for task in args.tasks}
    for path in args.models:
        model = load_candidate(path, device)
        for task in args.tasks:
            if path in heads[task]:
                predictions[task][path] = predict_task(
                    model, tokenizer, dev[task], task, batch_size=args.batch_size, max_length=args.max_length,
                    bf16=args.bf16, progress=not args.no_progress,
                ).scores
        del model
    return predictions


def models_tasks(models) -> list:
    """Every task a head of `models` answers, the course's first: --tasks' default. A folder whose config cannot
    be read is left to check_output, which names what is wrong with it."""
    names = []
    for path in models:
        try:
            tasks = PretrainedConfig.get_config_dict(path)[0].get("tasks")
        except OSError:
            continue
        names += [task for task in (tasks if isinstance(tasks, dict) else {}) if task not in names]
    return in_course_order(names)


def check_flags(args):
    """The flags that no parser check covers: each model once, greedy's options only with greedy, two folds or more."""
    seen = {}
    for model in args.models:  # a local folder by where it is, however spelled ("runs/a", "./runs/a/")
        where = Path(model).expanduser().resolve() if Path(model).expanduser().is_dir() else model
        if where in seen:
            raise CommandError(f"--models lists a folder twice: {seen[where]} and {model}")
        seen[where] = model
    if args.selection != "greedy" and (args.with_replacement or args.max_members is not None):
        raise CommandError(f"--with_replacement and --max_members apply to --selection greedy, not {args.selection}")
    if args.held_out_folds < 2:
        raise CommandError(f"--held_out_folds must be at least 2, got {args.held_out_folds}")
    check_named_once("--tasks", args.tasks)


def check_output(args):
    """Refuse, before any model predicts, an --output_dir the ensemble may not replace: one of --models (or a
    folder holding one, or --data_dir), a folder holding other files, or a model without --overwrite_output_dir."""
    local_models = [Path(path).expanduser() for path in args.models if Path(path).expanduser().exists()]  # not Hub ids
    try:
        check_output_folder(args.output_dir, args.overwrite_output_dir,
                            inputs={"one of --models": local_models, "--data_dir": args.data_dir}, resumable=False)
    except ValueError as error:
        raise CommandError(str(error)) from None


@dataclass
class Outcome:
    """What selection found, per task: the Selection (members, weights, steps), the dev metrics of the
    averaged members (with the overall scores), the held-out scores (where the dev rows sufficed to
    cross-fit), and how alike the candidates err."""

    selections: list
    metrics: dict
    held_out: dict
    alike: dict

    def picked(self) -> set:
        """The model folders picked for any task."""
        return {path for s in self.selections for path, count in zip(s.candidates, s.counts) if count}


def selection_options(args) -> dict:
    return {"with_replacement": args.with_replacement, "max_members": args.max_members} if args.selection == "greedy" else {}


def select_members(args, heads, dev, predictions) -> Outcome:
    """Per task, the members that --selection picks from the candidates' dev predictions, and how they score."""
    outcome = Outcome([], {}, {}, {})
    options, select = selection_options(args), SELECTION_METHODS[args.selection]
    for task in args.tasks:
        kind = next(iter(heads[task].values()))["kind"]
        gold = gold_labels(dev[task], task)
        names, scores = list(predictions[task]), list(predictions[task].values())
        selection = select(task, kind, scores, gold, names=names, **options)
        outcome.selections.append(selection)
        averaged = average_scores(scores, selection.counts)
        outcome.metrics[task] = score_task(task, predictions_to_labels(averaged, kind, TASK_SCHEMAS[task].label_range), gold)
        outcome.alike[task] = error_correlation(task, kind, scores, gold, names=names)
        held_out = held_out_record(args, task, kind, scores, gold)
        if held_out is not None:
            outcome.held_out[task] = held_out
    outcome.metrics = with_overall_scores(outcome.metrics)
    return outcome


def held_out_record(args, task, kind, scores, gold):
    """The ensemble's and the best single model's scores on dev rows that did not choose them; None (and a
    note) where the dev rows are too few to cross-fit."""
    try:
        ensemble_score, single_score = held_out_scores(task, kind, scores, gold, folds=args.held_out_folds,
                                                       method=args.selection, **selection_options(args))
    except ValueError as error:  # the ensemble itself is still worth saving
        print(f"note: no held-out scores: {error}")
        return None
    return {"ensemble": ensemble_score, "best_single": single_score, "folds": args.held_out_folds}


def selection_record(args, outcome, members) -> dict:
    """ensemble_selection.json: the members, how they were chosen, and per task the selection's record."""
    held_out = outcome.held_out
    # working_dir: the folder --models are relative to (their records are read again by `minbert distill`).
    record = {"members": ensemble_task_weights(outcome.selections, members)[0], "working_dir": str(Path.cwd()),
              "selection": args.selection,
              **selection_options(args),
              "max_length": args.max_length,  # the dev inputs were cut to it, where given: the scores are theirs
              "tasks": {s.task: {**s.to_dict(), "error_correlation": outcome.alike[s.task],
                                 **({"held_out": held_out[s.task]} if s.task in held_out else {})}
                        for s in outcome.selections}}
    if all(task in held_out for task in ("sst", "para", "sts")):
        record["held_out_overall"] = {which: leaderboard_score(*(held_out[t][which] for t in ("sst", "para", "sts")))
                                      for which in ("ensemble", "best_single")}
    return record


def write_ensemble(args, ensemble, tokenizer, outcome, members, dev_data):
    """The ensemble, its tokenizer, metrics.json (with `dev_data`, the dev files scored), the selection record
    and the card, written into the staging folder, which then takes --output_dir's place: a failure on the way
    leaves --output_dir as it was."""
    output = Path(args.output_dir)
    staging = staging_folder(output)
    discard_unfinished_run(staging)  # check_output has made sure that discarding it was asked for
    ensemble.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    write_metrics_json(staging / "metrics.json", {**outcome.metrics, "dev_data": dev_data})
    record = selection_record(args, outcome, members)
    write_strict_json(staging / SELECTION_FILE, record)
    regenerate_model_card(staging, model_id=str(output))  # the card names the output folder, not the staging one
    move_into_place(staging, output)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    register_folder_schemas(argv, "--models")  # a CommandError: one line, printed by the dispatcher
    parser = build_parser()
    check_list_flags_once(parser, argv)
    args = parser.parse_args(argv)
    try:
        args.tasks = args.tasks or models_tasks(args.models)
        check_flags(args)
        check_output(args)
        device = torch_device("--device", args.device)
        heads, vocab_size = candidate_heads(args)
        dev, dev_data = read_dev_sets(args)
        tokenizer = shared_tokenizer(args.models)
        check_tokenizer_fits(args.models[0], tokenizer, vocab_size)
        predictions = predict_candidates(args, dev, tokenizer, device, heads)
    except CommandError as error:
        print(f"minbert ensemble: {error}", file=sys.stderr)
        return 2
    outcome = select_members(args, heads, dev, predictions)
    models = {path: load_candidate(path, device) for path in args.models if path in outcome.picked()}
    write_ensemble(args, build_ensemble(models, outcome.selections), tokenizer, outcome, list(models), dev_data)
    print(format_summary(outcome, len(models), Path(args.output_dir), args.selection))
    return 0


def format_summary(outcome, num_members, output, method="greedy") -> str:
    lines = [f"ensemble of {num_members} model(s) saved to {output}"]
    for s in outcome.selections:
        best_single = max(s.single_scores)
        picks = ", ".join(f"{name} ×{count}" if count > 1 else name for name, count in zip(s.candidates, s.counts) if count)
        line = f"  {s.task}: dev {s.score:.4f} (best single {best_single:.4f}) from {picks}"
        if s.task in outcome.held_out:
            unseen = outcome.held_out[s.task]
            line += (f"; on unseen dev rows ({unseen['folds']}-fold) {unseen['ensemble']:.4f} "
                     f"(best single {unseen['best_single']:.4f})")
        if outcome.alike.get(s.task, {}).get("mean") is not None:
            line += f"; candidates' errors correlate {outcome.alike[s.task]['mean']:.2f} on average"
        lines.append(line)
    metrics = outcome.metrics
    if "overall" in metrics:
        caveat = "(dev chose the members: optimistic)" if method == "greedy" else "(every model averaged: dev chose nothing)"
        lines.append(f"  overall (leaderboard) {metrics['overall']:.4f}   mean {metrics['mean']:.4f}   {caveat}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
