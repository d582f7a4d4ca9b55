"""`TrainingArguments.log_level` for the project's own loggers: Trainer applies it to transformers' loggers only,
and the trainer's own reports (the training rows, the optimizer's groups) are logged by this project's modules."""
import logging

PROJECT_LOGGERS = ("trainers", "hf_minbert", "minbert")  # minbert.*: the commands'


def apply_log_level(args) -> None:
    """Set the project's loggers to the level the arguments choose for this process (`log_level` on the main
    process, `log_level_replica` on the others), as Trainer sets transformers'. 'passive' leaves them to the
    caller's logging configuration. Where nothing would print the chosen records (no handler on the way to the
    root logger: Python's last-resort handler prints warnings only), a stderr handler is added, as
    transformers adds one to its own root logger."""
    chosen = args.log_level if args.should_log else args.log_level_replica
    if chosen == "passive":
        return
    level = args.get_process_log_level()
    for name in PROJECT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(level)
        if not logger.hasHandlers():
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
            logger.addHandler(handler)
