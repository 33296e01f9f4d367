"""Text helpers shared by the evaluations: normalisation, tokenisation, script and language guesses.

Tokenisation (used by the diversity metrics and the word-count instruction):

- Text is NFKC-normalised first, so full-width letters and digits count as their ordinary forms.
- CJK scripts (Han ideographs, Japanese kana, Korean Hangul syllables) have one token per character:
  Chinese and Japanese write no spaces, and a character is the unit that Distinct-n studies of Chinese
  use. Hangul is treated the same way so that the five study languages are all measured at a
  comparable, tokenizer-free granularity (Korean spaces separate whole phrases, not words).
- Everything else is split on whitespace and punctuation: a token is a run of letters and digits (after
  NFKC, so accented letters are whole), with an apostrophe allowed inside a word ("don't", "l'homme").
  Punctuation and symbols are dropped rather than counted: a comma is not lexical diversity.
- Tokens are case-folded by default, so "The" and "the" are one type.
"""

from __future__ import annotations

import re
import unicodedata

# Unicode blocks whose characters are each one token (see the module docstring).
_CJK_RANGES = (
    "\u1100-\u11ff"  # Hangul jamo
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana
    "\u3130-\u318f"  # Hangul compatibility jamo
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uac00-\ud7af"  # Hangul syllables
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\U00020000-\U0002ffff"  # CJK extensions B and later
)
_CJK_CHAR = f"[{_CJK_RANGES}]"
# A word character: a letter or digit that is not CJK, with inner apostrophes (ASCII or typographic).
_WORD_CHAR = rf"[^\W_{_CJK_RANGES}]"
_TOKEN_RE = re.compile(rf"{_CJK_CHAR}|{_WORD_CHAR}+(?:['\u2019]{_WORD_CHAR}+)*")


def tokenize(text: str, *, lowercase: bool = True) -> list[str]:
    """Split one text into tokens as the module docstring describes."""
    text = unicodedata.normalize("NFKC", text)
    if lowercase:
        text = text.casefold()
    return [t.replace("\u2019", "'") for t in _TOKEN_RE.findall(text)]


def fold(text: str) -> str:
    """Case- and accent-insensitive form for phrase matching.

    Accents are dropped by decomposing (NFD) and removing combining marks, then recomposing (NFC) so
    that Hangul syllables, which NFD splits into jamo, come back whole. Typographic apostrophes become
    ASCII and runs of whitespace become one space, so "I can’t" matches "i can't".
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return re.sub(r"\s+", " ", text).strip()


def script_counts(text: str) -> dict[str, int]:
    """Letters per script: 'latin', 'han', 'kana', 'hangul', 'other'."""
    counts = {"latin": 0, "han": 0, "kana": 0, "hangul": 0, "other": 0}
    for ch in unicodedata.normalize("NFKC", text):
        if not ch.isalpha():
            continue
        o = ord(ch)
        if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or o >= 0x20000:
            counts["han"] += 1
        elif 0x3040 <= o <= 0x30FF:
            counts["kana"] += 1
        elif 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF or 0x3130 <= o <= 0x318F:
            counts["hangul"] += 1
        elif o < 0x250 or 0x1E00 <= o <= 0x1EFF:  # Basic Latin .. Latin Extended-B, Latin Extended Additional
            counts["latin"] += 1
        else:
            counts["other"] += 1
    return counts


# Frequent function words that tell the three Latin-script study languages apart. Short on purpose:
# the check is "is this response in the asked language", not general language identification.
_FUNCTION_WORD_TEXT = {
    "en": "the and is are was were of to in that it for with on this be have you not but they what "
    "which would will can your their there from or an",
    "es": "el la los las es son y de que en un una por para con no se su lo del al como pero más muy "
    "está están este esta usted también",
    "fr": "le la les est sont et de des que en un une pour avec ne pas se sur du au comme mais plus "
    "très cette ce vous aussi dans qui",
}
_FUNCTION_WORDS = {lang: frozenset(words.split()) for lang, words in _FUNCTION_WORD_TEXT.items()}
# Letters that only one of the three uses (after case-folding).
_MARK_LETTERS = {"es": set("ñ¿¡"), "fr": set("çèêëîïôûœ")}


def detect_language(text: str) -> str | None:
    """Best guess among the study languages ('en', 'zh', 'es', 'fr', 'ko'), or None if unsure.

    The script decides first (Hangul -> ko, Han -> zh); Latin-script text is then told apart by votes
    of common function words plus letters unique to Spanish or French. Kana-heavy text (Japanese) and
    other scripts give None, as does text with no letters.
    """
    counts = script_counts(text)
    letters = sum(counts.values())
    if letters == 0:
        return None
    if counts["hangul"] / letters > 0.3:
        return "ko"
    if counts["kana"] / letters > 0.1:
        return None  # Japanese: not one of ours
    if counts["han"] / letters > 0.3:
        return "zh"
    if counts["latin"] / letters < 0.5:
        return None
    words = tokenize(text)
    folded = unicodedata.normalize("NFKC", text).casefold()
    votes = {lang: sum(w in fw for w in words) for lang, fw in _FUNCTION_WORDS.items()}
    for lang, marks in _MARK_LETTERS.items():
        votes[lang] += 2 * sum(folded.count(m) for m in marks)
    best = max(votes, key=lambda k: votes[k])
    ranked = sorted(votes.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        return None
    return best
