"""Instructions: a word tokenizer for the model and a parser of the caption template.

Captions follow `Grasp the {part} of the {object} object, with contacts on {fingers}`
(sim.checks.caption). The tokenizer is a word vocabulary built from the training
captions (lower-cased words; unknown words map to one id), saved with the model.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

import numpy as np

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9_]+")
_CAPTION = re.compile(
    r"^grasp the (?:(?P<part>.+?) of the )?(?P<object>.+?) object"
    r"(?:, with contacts on (?P<fingers>.+))?$"
)


class InstructionError(ValueError):
    """An instruction the model cannot use (empty, or not a grasp instruction)."""


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """Word-level tokenizer. Fields: vocab (id -> word; 0 is padding, 1 unknown),
    max_len (tokens per instruction; longer ones are cut)."""

    vocab: tuple[str, ...]
    max_len: int = 24

    @classmethod
    def fit(cls, texts: Iterable[str], max_len: int = 24) -> Tokenizer:
        seen = sorted({w for t in texts for w in words(t)})
        return cls((PAD, UNK, *seen), max_len)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids, zero-padded. Shape: (len(texts), max_len)."""
        index = {w: i for i, w in enumerate(self.vocab)}
        out = np.zeros((len(texts), self.max_len), dtype=np.int32)
        for row, text in enumerate(texts):
            ids = [index.get(w, 1) for w in words(text)][: self.max_len]
            if not ids:
                raise InstructionError(f"instruction {text!r} has no words; e.g. {EXAMPLE!r}")
            out[row, : len(ids)] = ids
        return out

    def unknown(self, text: str) -> list[str]:
        """The words of `text` the vocabulary lacks (each encodes as the unknown id)."""
        known = set(self.vocab)
        return sorted({w for w in words(text) if w not in known})

    def to_json(self) -> dict:
        return {"vocab": list(self.vocab), "max_len": self.max_len}

    @classmethod
    def from_json(cls, d: dict) -> Tokenizer:
        return cls(tuple(d["vocab"]), int(d["max_len"]))


EXAMPLE = "Grasp the handle of the mug object, with contacts on thumb, index, middle, palm"


@dataclasses.dataclass(frozen=True)
class ParsedInstruction:
    part: str | None
    object: str
    fingers: tuple[str, ...]


def parse_instruction(text: str) -> ParsedInstruction:
    """Part, object and fingers of a caption-style instruction."""
    m = _CAPTION.match(" ".join(text.strip().rstrip(".").lower().split()))
    if m is None:
        raise InstructionError(f"cannot parse instruction {text!r}; expected e.g. {EXAMPLE!r}")
    fingers = m.group("fingers")
    names = tuple(f.strip() for f in fingers.split(",")) if fingers else ()
    return ParsedInstruction(m.group("part"), m.group("object"), names)
