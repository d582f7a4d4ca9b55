"""When two texts are the same text: when an uncased BERT reads them alike.

The base models are uncased: their tokenizer lowercases, strips accents and splits punctuation from words
before it looks up a word piece, so "What is A?" and "what is a ?" reach the model as the same ids. The
checks that keep a training row from repeating another or equaling an evaluation row compare texts in that
form (`text_form`): a row that differs from a dev row only in case or in spaces around a comma is the dev
row to the model. A cased model sees such rows as different; the checks then drop a few rows more than
needed, never fewer.
"""
import functools

from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

_NORMALIZER = BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=True)
_WORDS = BertPreTokenizer()


@functools.lru_cache(maxsize=1 << 20)  # a row's text is compared by several checks of one run
def text_form(text: str) -> str:
    """`text` as an uncased BERT tokenizer's words, joined by single spaces."""
    return " ".join(word for word, _ in _WORDS.pre_tokenize_str(_NORMALIZER.normalize_str(text)))


def text_key(texts: tuple, symmetric: bool):
    """What makes two rows the same text: the same words as an uncased BERT reads them (`text_form`: case,
    accents and whitespace aside); a pair of a `symmetric` task in either order.

    Either order for para and sts, whose labels do not depend on it: a paraphrase is one both ways and a
    similarity is symmetric, and training swaps a pair's sentences at random (--pair_swap_probability) and
    scores both orders (--average_pair_orders). (b, a) after (a, b) is the same example again. Not so for a
    task such as entailment, where (b, a) is another example with its own label."""
    words = tuple(text_form(text) for text in texts)
    if len(words) == 1:
        return words[0]
    return tuple(sorted(words)) if symmetric else words
