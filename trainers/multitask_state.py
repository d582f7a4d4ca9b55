"""What `MultitaskTrainer` keeps beside Trainer's state: SMART's regularizer with its mean teacher, and
PCGrad's generator of the task order.

Both are saved beside optimizer.pt in a checkpoint and restored with it, so that a resumed run continues
exactly where the interrupted one was. Like the optimizer's moments, this state matters only to resume
training (a `save_only_model` checkpoint has neither, nor the optimizer's: resuming one restarts them all, with
a warning naming what restarts).
"""
import dataclasses
import json
import logging
import os

import torch
from transformers import TrainerCallback

logger = logging.getLogger(__name__)

MULTITASK_STATE_NAME = "multitask_state.pt"
OPTIMIZER_SETTINGS_NAME = "optimizer_settings.json"
# What the optimizer's parameter groups hold (their base learning rates and weight decay, AdamW's constants):
# optimizer.pt and scheduler.pt restore them on resume, whatever the flags now say.
OPTIMIZER_SETTINGS = ("learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
                      "layerwise_lr_decay", "head_lr_multiplier")


def build_smart(args, tasks, model):
    """SMART as `args` ask, or None when off. `SmartSettings` is read from the arguments by name: each of its
    fields is the argument `smart_<field>`, and its per-task `weights` are --smart_weight for `tasks`."""
    weights = args.per_task("smart_weight", tasks, default=0.0)
    if not any(weights.values()) and args.smart_proximal_weight == 0:
        return None
    from .smart import SmartRegularizer, SmartSettings

    fields = [field.name for field in dataclasses.fields(SmartSettings) if field.name != "weights"]
    settings = SmartSettings(weights=weights, **{name: getattr(args, f"smart_{name}") for name in fields})
    return SmartRegularizer(settings, model=model)


class MeanTeacherUpdate(TrainerCallback):
    """After every optimizer step, move SMART's mean-teacher copy toward the model (Bregman proximal point).
    `current_model()` gives the unwrapped model being trained."""

    def __init__(self, teacher, current_model):
        self.teacher, self.current_model = teacher, current_model

    def on_optimizer_step(self, args, state, control, **kwargs):
        progress = state.global_step / max(state.max_steps, 1)
        self.teacher.update(self.current_model(), self.teacher.beta_at(progress))


def save_multitask_state(smart, pcgrad_generator, output_dir):
    state = {"pcgrad_generator": pcgrad_generator.get_state()}
    if smart is not None and smart.teacher is not None:
        state["mean_teacher"] = {"weights": smart.teacher.model.state_dict(), "num_updates": smart.teacher.num_updates}
    torch.save(state, os.path.join(output_dir, MULTITASK_STATE_NAME))


def save_optimizer_settings(args, output_dir):
    settings = {name: getattr(args, name) for name in OPTIMIZER_SETTINGS}
    with open(os.path.join(output_dir, OPTIMIZER_SETTINGS_NAME), "w") as handle:
        json.dump(settings, handle, indent=2)


def check_optimizer_settings(args, checkpoint):
    """A ValueError where `args` ask for optimizer settings other than those `checkpoint`'s optimizer state was
    built with: resuming restores the saved ones, so the run would silently train with them while its record
    says otherwise. A checkpoint without the record (an older one) is not checked."""
    path = os.path.join(checkpoint, OPTIMIZER_SETTINGS_NAME)
    if not os.path.isfile(path):
        return
    with open(path) as handle:
        saved = json.load(handle)
    changed = [f"--{name} {getattr(args, name)} (it holds {saved[name]})" for name in OPTIMIZER_SETTINGS
               if name in saved and getattr(args, name) != saved[name]]
    if changed:
        raise ValueError(f"--resume_from_checkpoint {checkpoint}: its optimizer state, which resuming restores, was "
                         f"built with other settings: {'; '.join(changed)}; resume with the flags it was trained "
                         "with, or start a new run from its weights (--model_name_or_path)")


def load_multitask_state(smart, pcgrad_generator, checkpoint, model, pcgrad=True):
    """Restore the state saved in `checkpoint`. Without it (or without a teacher in it), the teacher restarts
    from `model`'s current weights and PCGrad's task order from the seed (said where `pcgrad` trains with it)."""
    teacher = smart.teacher if smart is not None else None
    path = os.path.join(checkpoint, MULTITASK_STATE_NAME)
    if not os.path.isfile(path):
        restarted = [what for what, used in (("SMART's mean teacher from the current weights", teacher is not None),
                                             ("PCGrad's task order from the seed", pcgrad)) if used]
        if restarted:
            logger.warning("%s lacks %s: %s restart%s", checkpoint, MULTITASK_STATE_NAME, " and ".join(restarted),
                           "" if len(restarted) > 1 else "s")
        if teacher is not None:
            teacher.update(model, beta=0.0)
        return
    state = torch.load(path, weights_only=True)
    pcgrad_generator.set_state(state["pcgrad_generator"])
    if teacher is not None and "mean_teacher" in state:
        teacher.model.load_state_dict(state["mean_teacher"]["weights"])
        teacher.num_updates = state["mean_teacher"]["num_updates"]
    elif teacher is not None:  # the interrupted run had no proximal term: start the teacher here
        teacher.update(model, beta=0.0)
