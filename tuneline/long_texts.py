"""Long texts cut to the part the model reads, before the tokenizer sees them, with the same result.

A fast tokenizer truncates *after* it has tokenized the whole text: a 1 MB text costs about a second although only
its first ``max_length`` tokens are kept, and a corpus of long documents (news articles, tickets with mail threads,
scraped pages) spends more time tokenizing than a short training epoch takes. So a text of more than
:data:`CHARS_PER_TOKEN` characters a token is cut at the last whitespace before that many characters, and the cut is
kept only when it still holds more than ``max_length`` tokens (texts of more than twice that many characters only): BERT-family tokenizers split words at whitespace
before they split them into pieces, so every word before the cut is tokenized as in the whole text, and the
truncated encoding (its ids and whether it was truncated) is the whole text's. A cut that holds too few tokens (a
run of spaces, many one-character tokens) is dropped and the whole text is tokenized.

Only for inputs of one text (classification, multi-label); a pair's truncation shares the budget between its two
texts by their lengths, and an NER sentence is already words.
"""

from __future__ import annotations

# One definition: the registered text classifier's file holds it (that file is self-contained, so a served model needs
# no tuneline), and training, evaluation and the embeddings use the same cut from here. The multi-label model's file
# carries a copy, held to this one by tests/test_pyfunc_without_tuneline.py.
from tuneline.pyfunc.text_classifier import CHARS_PER_TOKEN, cut_long_texts

__all__ = ["CHARS_PER_TOKEN", "cut_long_texts"]
