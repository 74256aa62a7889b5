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

from typing import Any

#: Characters a token allows before a text is cut: about twice what English WordPiece tokens average (4-5 characters
#: with their space), so a cut holds enough tokens almost always and is checked anyway.
CHARS_PER_TOKEN = 8


def cut_long_texts(texts: list[Any], tokenizer: Any, max_length: int) -> list[Any]:
    """``texts`` with each long one cut where the tokenizer's truncated encoding stays the same (see the module)."""
    limit = max_length * CHARS_PER_TOKEN
    # only texts over twice the cut: the cut is tokenized twice (counted here, encoded by the caller), which would
    # cost a text of 1.5 cuts more than its whole tokenization saves
    long = [i for i, text in enumerate(texts) if isinstance(text, str) and len(text) > 2 * limit]
    if not long:
        return texts
    cuts: dict[int, str] = {}
    for i in long:
        end = max(texts[i].rfind(" ", 0, limit), texts[i].rfind("\n", 0, limit), texts[i].rfind("\t", 0, limit))
        if end > 0:
            cuts[i] = texts[i][:end]
    if not cuts:
        return texts
    counts = tokenizer(list(cuts.values()), add_special_tokens=False, return_attention_mask=False,
                       return_token_type_ids=False, verbose=False)["input_ids"]
    result = list(texts)
    for (i, cut), ids in zip(cuts.items(), counts):
        if len(ids) > max_length:  # more than the model reads, so truncated either way, at the same token
            result[i] = cut
    return result
