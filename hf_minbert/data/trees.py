"""Stanford Sentiment Treebank trees as labelled SST phrases.

The treebank's PTB bracket format holds one tree per line, every node labelled 0..4:

    (3 (2 (2 The) (2 Rock)) (4 (2 is) (4 destined)) (2 .))

Each labelled node is a phrase: its words joined by single spaces, with the leading space the CS224N SST
files give every sentence, so a tree's root equals its sentence in `ids-sst-train.csv` and a phrase can be
compared with the evaluation sentences as it is. Words are kept as the treebank writes them (`-LRB-`, `'s`,
``` `` ```, `1\\/2`); only ASCII spaces separate them, since a treebank word may hold a no-break space.

A phrase's id is `{prefix}-{line}-{node}`: the tree's line number and the node's index in pre-order (0 is
the root), stable across runs and option choices, so overlap checks between sources can name rows.
"""
import re
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

from .lines import FileLines
from .schema import ReadReport, TaskRowsBuilder, task_schema
from .text_form import text_form

LABELS = {str(label): label for label in range(5)}
# "(label", ")" or a word, between ASCII whitespace: a tab separates as a space does, while the no-break space
# inside a treebank word ("8\xa01\/2") stays in it.
TOKEN = re.compile(r"\([^ \t\n\r\f\v()]*|\)|[^ \t\n\r\f\v()]+")


class TreeSyntaxError(ValueError):
    """A line whose bracket structure breaks; `character` is the 1-based column where it does."""

    def __init__(self, character: int, problem: str):
        super().__init__(f"character {character}: {problem}")
        self.character = character
        self.problem = problem


class Phrase(NamedTuple):
    text: str  # " word word ...": single spaces, and the leading space of the CS224N SST files
    label: int
    tokens: int  # number of words


def parse_tree(line: str) -> list:
    """The phrases of one tree line, in pre-order (the root first); raises `TreeSyntaxError`."""
    tokens = TOKEN.findall(line)
    try:
        return _phrases(tokens)
    except _Malformed as bad:
        # Positions are worked out only for a broken line: the fast path never needs them.
        characters = [match.start() + 1 for match in TOKEN.finditer(line)] + [len(line) + 1]
        opened_at = characters[bad.opened] if bad.opened is not None else None
        character = characters[bad.index] + bad.offset
        raise TreeSyntaxError(character, bad.problem.format(opened_at=opened_at)) from None


class _Malformed(Exception):
    """Where a tree breaks, in token indices (`problem` may name where `opened` is, as {opened_at})."""

    def __init__(self, index: int, problem: str, opened: int = None, offset: int = 0):
        self.index, self.problem, self.opened, self.offset = index, problem, opened, offset


def _phrases(tokens: list) -> list:
    words = []
    open_nodes = []  # (node index, index of its first word, token index of its "(label") per open bracket
    nodes = []  # [label, first word index, last word index] per node, in pre-order
    for index, token in enumerate(tokens):
        if token[0] == "(":
            label = LABELS.get(token[1:])
            if label is None:
                _bad_label(tokens, index)
            open_nodes.append((len(nodes), len(words), index))
            nodes.append([label, 0, 0])
        elif token == ")":
            if not open_nodes:
                raise _Malformed(index, "')' closes no open bracket")
            node, first_word, opened = open_nodes.pop()
            if first_word == len(words):
                raise _Malformed(index, "the node opened at character {opened_at} holds no word", opened=opened)
            nodes[node][1:] = first_word, len(words) - 1
            if not open_nodes and index + 1 < len(tokens):
                raise _Malformed(index + 1, "text after the tree closed at character {opened_at}", opened=index)
        elif open_nodes:
            words.append(token)
        else:
            raise _Malformed(index, f"word {token!r} outside any bracket")
    if open_nodes:
        raise _Malformed(len(tokens), "the line ends with the bracket opened at character {opened_at} still open",
                         opened=open_nodes[-1][2])
    if not nodes:
        raise _Malformed(0, "empty line: expected a tree")
    ends = list(accumulate(len(word) + 1 for word in words))  # in the sentence text, each word after its space
    starts = [0, *ends[:-1]]
    sentence = "".join(" " + word for word in words)
    return [Phrase(sentence[starts[first]:ends[last]], label, last - first + 1) for label, first, last in nodes]


def _bad_label(tokens, index):
    label = tokens[index][1:]
    if label:
        raise _Malformed(index, f"expected a label 0..4 after '(', found {label!r}", offset=1)
    found = tokens[index + 1] if index + 1 < len(tokens) else "the end of the line"
    raise _Malformed(index + 1, f"expected a label 0..4 right after '(', found {found!r}")


@dataclass
class TreeReadReport(ReadReport):
    """What the tree reader saw, kept and dropped (on top of `ReadReport`'s rows and skipped lines)."""

    trees: int = 0
    phrases: int = 0  # labelled nodes in the trees read
    short: int = 0  # phrases under min_tokens (roots are never dropped for length)
    duplicates: int = 0  # phrases repeating an earlier phrase's text with the same label
    label_conflicts: list = field(default_factory=list)  # (text, first id, label, id, other label)
    excluded: list = field(default_factory=list)  # ids of phrases equal to an evaluation sentence
    excluded_texts: int = 0  # distinct evaluation sentences among them

    def __str__(self):
        line = super().__str__()
        line += f"; from {self.trees} trees with {self.phrases} labelled phrases"
        dropped = [(self.short, "shorter than the minimum length"), (self.duplicates, "exact duplicates")]
        dropped.append((len(self.label_conflicts), "repeating a phrase with another label (first label kept)"))
        dropped.append((len(self.excluded), f"equal to {self.excluded_texts} evaluation sentence(s)"))
        return line + "".join(f"; dropped {count} {why}" for count, why in dropped if count)

    def as_dict(self, limit: int = ReadReport.MAX_SHOWN) -> dict:
        summary = super().as_dict(limit)
        summary.update(
            trees=self.trees, phrases=self.phrases, short=self.short, duplicates=self.duplicates,
            label_conflicts=len(self.label_conflicts), excluded=len(self.excluded), excluded_texts=self.excluded_texts,
        )
        return summary


@dataclass(frozen=True)
class PhraseOptions:
    roots_only: bool = False  # only whole sentences: the CSV file's rows, from the trees
    min_tokens: int = 1  # drop inner phrases shorter than this many words
    drop_duplicates: bool = True  # keep one row per distinct phrase text

    def __post_init__(self):
        if self.min_tokens < 1:
            raise ValueError(f"min_tokens must be at least 1, got {self.min_tokens}")


def read_tree_file(path, *, options: PhraseOptions = PhraseOptions(), exclude_sentences=(), id_prefix=None,
                   skip_bad_rows: bool = False):
    """Read a treebank file (one PTB tree per line) into the sst schema; returns `(Dataset, TreeReadReport)`.

    exclude_sentences: texts (e.g. the evaluation file's sentences) no phrase may equal; such phrases are
    dropped and counted. A malformed line is a `DataError` naming the file, the line and the character
    where the bracket structure breaks, or, with `skip_bad_rows`, a skipped row in the report.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sst tree file not found: {path}")
    lines = FileLines(path)
    dataset, report = phrases_to_rows(((f"line {number}", number, text) for number, text in lines), str(path),
                                      id_prefix or path.stem, options, exclude_sentences, skip_bad_rows)
    report.sha256 = lines.sha256
    return dataset, report


def phrases_to_rows(lines, source: str, id_prefix: str, options: PhraseOptions, exclude_sentences=(),
                    skip_bad_rows: bool = False):
    """Parse `(location, number, tree text)` triples and collect their phrases as checked sst rows."""
    report = TreeReadReport(source=source, task="sst")
    builder = TaskRowsBuilder(task_schema("sst"), True, source, skip_bad_rows, report=report)
    excluded_texts = {text_form(text) for text in exclude_sentences}
    kept_labels = {}  # phrase text -> (id, label) of the row kept for it
    excluded_seen = set()
    for location, number, text in lines:
        try:
            phrases = parse_tree(text) if isinstance(text, str) else None
        except TreeSyntaxError as error:
            builder.reject(location, None, f"malformed tree at {error}")
            continue
        if phrases is None:
            builder.reject(location, None, f"expected a tree as text, got {type(text).__name__} {text!r}")
            continue
        report.trees += 1
        report.phrases += len(phrases)
        for node, phrase in enumerate(phrases[:1] if options.roots_only else phrases):
            row_id = f"{id_prefix}-{number}-{node}"
            if node and phrase.tokens < options.min_tokens:
                report.short += 1
            elif options.drop_duplicates and phrase.text in excluded_seen:
                report.duplicates += 1  # of a phrase left out already: one row fewer, counted once
            elif text_form(phrase.text) in excluded_texts:
                report.excluded.append(row_id)
                excluded_seen.add(phrase.text)
            elif options.drop_duplicates and phrase.text in kept_labels:
                first_id, first_label = kept_labels[phrase.text]
                if first_label == phrase.label:
                    report.duplicates += 1
                else:
                    report.label_conflicts.append((phrase.text, first_id, first_label, row_id, phrase.label))
            else:
                kept_labels.setdefault(phrase.text, (row_id, phrase.label))
                builder.add(location, {"id": row_id, "sentence": phrase.text, "sentiment": phrase.label})
    report.excluded_texts = len(excluded_seen)
    return builder.finish()
