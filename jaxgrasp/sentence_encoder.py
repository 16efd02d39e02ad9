"""A frozen pretrained sentence encoder for instructions (optional, DESIGN.md §10).

The model's own instruction encoder learns word embeddings from the training captions,
so a word it never saw (an unseen object's name) is one unknown token. A frozen
pretrained encoder gives every word a meaning learnt elsewhere: "Grasp the body of the
flask object" lies nearest the bottle's instruction, "cup" nearest "mug", "grip"
nearest "handle".

`wordllama` is WordLlama's `l2_supercat` model (256-d token embeddings distilled from
the input codebooks of Llama-2-class language models, mean-pooled over the sentence's
tokens, MIT licence). It is chosen because its weights (16 MB) and tokenizer ship inside
its PyPI wheel: it loads offline in a fraction of a second with numpy and `tokenizers`,
no deep-learning framework and no model download. Install it with the `text` extra
(`pip install "jaxgrasp[text]"`). The files are read directly: `WordLlama.load()` looks
for the tokenizer outside the folder the wheel puts it in and would go to the network.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from jaxgrasp.instruction import InstructionError

SentenceEncoderName = Literal["wordllama"]
SENTENCE_ENCODERS: tuple[str, ...] = get_args(SentenceEncoderName)

_WORDLLAMA_WEIGHTS = "weights/l2_supercat_256.safetensors"
_WORDLLAMA_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


@dataclasses.dataclass(frozen=True, eq=False)
class SentenceEncoder:
    """A frozen text encoder: `encode(texts)` gives one unit vector per text.

    Fields:
        name: which encoder (one of `SENTENCE_ENCODERS`).
        dim: size of its vectors.
        embed: the encoder itself, texts -> (n, dim) float array.
    """

    name: str
    dim: int
    embed: Callable[[list[str]], np.ndarray]

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length sentence vectors. Shape: (len(texts), dim)."""
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise InstructionError(
                    f"instruction {text!r} is empty; e.g. 'Grasp the handle of the mug object'"
                )
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self.embed(texts), dtype=np.float32).reshape(len(texts), self.dim)
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any():  # e.g. a text with no tokens: its mean over no tokens
            raise InstructionError(
                f"the {self.name} encoder gives no vector for {texts[int(np.argmax(bad))]!r}; "
                "use words, e.g. 'Grasp the handle of the mug object'"
            )
        return out


def sentence_vectors(name: str | None, texts: Sequence[str]) -> np.ndarray:
    """The named encoder's vectors of `texts`; (n, 0) for no encoder. Shape: (n, dim)."""
    if name is None:
        return np.zeros((len(texts), 0), np.float32)
    return sentence_encoder(name).encode(texts)


@functools.cache
def sentence_encoder(name: str) -> SentenceEncoder:
    """The named frozen encoder, loaded once per process."""
    if name not in SENTENCE_ENCODERS:
        raise InstructionError(
            f"unknown sentence encoder '{name}'; choose one of {', '.join(SENTENCE_ENCODERS)}"
        )
    return _wordllama()


def _wordllama() -> SentenceEncoder:
    try:
        import wordllama
        from safetensors import safe_open
        from tokenizers import Tokenizer
        from wordllama.inference import WordLlamaInference
    except ImportError:
        raise InstructionError(
            "sentence encoder 'wordllama' needs the wordllama package: "
            'pip install "jaxgrasp[text]"'
        ) from None
    root = Path(wordllama.__file__).parent
    weights, tokenizer = root / _WORDLLAMA_WEIGHTS, root / _WORDLLAMA_TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise InstructionError(
                f"the installed wordllama package has no {path.relative_to(root)}; "
                'reinstall it (pip install --force-reinstall "wordllama>=0.4")'
            )
    with safe_open(str(weights), framework="np") as f:
        table = f.get_tensor("embedding.weight")
    model = WordLlamaInference(table, Tokenizer.from_file(str(tokenizer)))
    embed = functools.partial(model.embed, norm=True)
    return SentenceEncoder("wordllama", int(table.shape[1]), embed)
