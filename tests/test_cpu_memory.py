"""trainers/cpu_memory.py: the trainer has glibc keep freed memory on CPU, so each step's large tensors are reused
rather than faulted in afresh; other C libraries are left alone."""
import platform
import sys

import pytest
from transformers import AutoTokenizer

from tests.helpers import tiny_model, tiny_task_rows
from trainers import MultitaskTrainer, MultitaskTrainingArguments
from trainers.cpu_memory import M_MMAP_MAX, M_TRIM_THRESHOLD, NEVER_TRIM, keep_freed_memory


class FakeGlibc:
    def __init__(self, answer=1):
        self.calls, self.answer = [], answer

    def gnu_get_libc_version(self):
        return b"2.36"

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return self.answer


class FakeMusl:
    def mallopt(self, parameter, value):
        raise AssertionError("mallopt called on a C library that is not glibc")


def test_glibc_is_asked_to_serve_every_block_from_its_heap_and_never_trim_it():
    libc = FakeGlibc()
    assert keep_freed_memory(libc) is True
    assert libc.calls == [(M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, NEVER_TRIM)]


def test_a_refused_mallopt_is_reported_as_not_kept():
    assert keep_freed_memory(FakeGlibc(answer=0)) is False


def test_another_c_library_is_left_alone():
    assert keep_freed_memory(FakeMusl()) is False


def test_this_process_keeps_freed_memory_exactly_where_it_runs_on_glibc_linux():
    on_glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is on_glibc


@pytest.mark.parametrize("keep", [True, False])
def test_the_trainer_keeps_freed_memory_on_cpu_unless_told_not_to(tmp_path, minilm_path, monkeypatch, keep):
    calls = []
    monkeypatch.setattr("trainers.trainer.keep_freed_memory", lambda: calls.append(True))
    args = MultitaskTrainingArguments(output_dir=str(tmp_path), use_cpu=True, max_steps=1, report_to="none",
                                      eval_strategy="no", save_strategy="no", disable_tqdm=True,
                                      keep_freed_memory=keep, max_seq_length=32)
    trainer = MultitaskTrainer(model=tiny_model(), args=args, train_dataset={"sst": tiny_task_rows()["sst"]},
                               processing_class=AutoTokenizer.from_pretrained(minilm_path))
    trainer.train()
    assert calls == ([True] if keep else [])
