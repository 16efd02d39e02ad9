"""The flow-matching grasp network (DESIGN.md §10, DexVLG §5) in Flax NNX.

`FlowNet(cloud, normals, tokens, sentence, x_t, t) -> velocity`, for one batch:
- a PointNet encoder (shared per-point MLP on xyz + normal, then max and mean pooling)
  for the object cloud in the object frame (grasps live in that frame, so the cloud is
  not re-centred);
- an instruction encoder: learned word embeddings, masked mean pooling, an MLP; with
  `sentence_dim` > 0 the instruction's vector from a frozen pretrained sentence encoder
  (`jaxgrasp.sentence_encoder`) joins the pooled embeddings before that MLP
  (`sentence` has shape (b, 0) otherwise);
- a velocity network: residual MLP blocks on the noisy grasp, each modulated (FiLM) by
  the cloud feature, the instruction feature and a sinusoidal embedding of t;
- with `anchored`, an anchor head: a distribution over the cloud's points (a per-point
  key against a query from the cloud and instruction features) of where the palm goes,
  and the chosen point's position, normal and per-point feature join the conditioning.
  The grasp's translation is then relative to that point (`jaxgrasp.grasp_vector`), so
  the hand is placed against the surface in front of it rather than by where surfaces
  lie on average over the training objects.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, Int


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network sizes. Fields: grasp_dim (3 + 6 + n_q), vocab_size, point_width (per-point
    MLP width), cond_width (cloud / text / time features), hidden (velocity MLP width),
    blocks (residual blocks), token_width (word embedding size), sentence_dim (size of
    the frozen sentence vectors; 0: none), anchored (the anchor head, with translations
    relative to the chosen cloud point), anchor_width (its key / query size)."""

    grasp_dim: int
    vocab_size: int
    point_width: int = 64
    cond_width: int = 256
    hidden: int = 512
    blocks: int = 4
    token_width: int = 64
    sentence_dim: int = 0
    anchored: bool = False
    anchor_width: int = 64


class PointEncoder(nnx.Module):
    def __init__(self, width: int, out: int, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(6, width // 2, rngs=rngs)
        self.l2 = nnx.Linear(width // 2, width, rngs=rngs)
        self.l3 = nnx.Linear(width, 2 * width, rngs=rngs)
        self.head = nnx.Linear(4 * width, out, rngs=rngs)

    def __call__(
        self, points: Float[Array, "b n 3"], normals: Float[Array, "b n 3"]
    ) -> tuple[Float[Array, "b c"], Float[Array, "b n f"]]:
        """(the cloud's feature, each point's feature (f = 2 * width))."""
        h = jnp.concatenate([points * 10.0, normals], axis=-1)  # decimetres: unit scale
        h = jax.nn.gelu(self.l1(h))
        h = jax.nn.gelu(self.l2(h))
        h = self.l3(h)
        pooled = jnp.concatenate([h.max(axis=1), h.mean(axis=1)], axis=-1)
        return self.head(jax.nn.gelu(pooled)), h


class InstructionEncoder(nnx.Module):
    def __init__(self, vocab_size: int, width: int, out: int, sentence_dim: int, rngs: nnx.Rngs):
        self.embed = nnx.Embed(vocab_size, width, rngs=rngs)
        # The frozen sentence vector joins the pooled word embeddings before the MLP.
        self.l1 = nnx.Linear(width + sentence_dim, out, rngs=rngs)
        self.l2 = nnx.Linear(out, out, rngs=rngs)

    def __call__(
        self, tokens: Int[Array, "b l"], sentence: Float[Array, "b s"]
    ) -> Float[Array, "b c"]:
        mask = (tokens > 0)[..., None].astype(jnp.float32)
        e = self.embed(tokens) * mask
        pooled = e.sum(axis=1) / jnp.maximum(mask.sum(axis=1), 1.0)
        # Unit vectors have entries ~ 1 / sqrt(s); scaled to unit RMS like the embeddings.
        scaled = sentence.astype(pooled.dtype) * jnp.sqrt(float(sentence.shape[-1]))
        h = jnp.concatenate([pooled, scaled], axis=-1)
        return self.l2(jax.nn.gelu(self.l1(h)))


def time_embedding(t: Float[Array, " b"], dim: int) -> Float[Array, "b dim"]:
    """Sinusoidal features of t in [0, 1]."""
    freqs = jnp.exp(jnp.linspace(0.0, jnp.log(1000.0), dim // 2))
    ang = t[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)


class _Block(nnx.Module):
    def __init__(self, hidden: int, cond: int, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(hidden, use_scale=False, use_bias=False, rngs=rngs)
        self.film = nnx.Linear(cond, 2 * hidden, rngs=rngs)
        self.l1 = nnx.Linear(hidden, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, hidden, rngs=rngs)

    def __call__(self, h, c):
        scale, shift = jnp.split(self.film(c), 2, axis=-1)
        x = self.norm(h) * (1.0 + scale) + shift
        return h + self.l2(jax.nn.gelu(self.l1(jax.nn.gelu(x))))


class FlowNet(nnx.Module):
    """Velocity field v(x_t, t | cloud, instruction)."""

    def __init__(self, config: ModelConfig, rngs: nnx.Rngs):
        c = config.cond_width
        self.config = config
        self.points = PointEncoder(config.point_width, c, rngs)
        self.text = InstructionEncoder(
            config.vocab_size, config.token_width, c, config.sentence_dim, rngs
        )
        self.time = nnx.Linear(c, c, rngs=rngs)
        if config.anchored:
            f, k = 2 * config.point_width, config.anchor_width
            self.anchor_key = nnx.Linear(f, k, rngs=rngs)
            self.anchor_query = nnx.Linear(2 * c, k, rngs=rngs)
            self.anchor_in = nnx.Linear(6 + f, c, rngs=rngs)
        self.cond = nnx.Linear((4 if config.anchored else 3) * c, c, rngs=rngs)
        self.inp = nnx.Linear(config.grasp_dim, config.hidden, rngs=rngs)
        self.blocks = nnx.List([_Block(config.hidden, c, rngs) for _ in range(config.blocks)])
        self.out_norm = nnx.LayerNorm(config.hidden, rngs=rngs)
        self.out = nnx.Linear(
            config.hidden, config.grasp_dim, kernel_init=nnx.initializers.zeros, rngs=rngs
        )

    def features(
        self, points, normals, tokens, sentence, repeat: int = 1
    ) -> tuple[Float[Array, "b c2"], Float[Array, "bc n f"]]:
        """(cloud + instruction feature per grasp, per-point features per cloud).
        `repeat` grasps share each cloud: points / normals have shape (b / repeat, n, 3),
        tokens (b, l), sentence (b, sentence_dim)."""
        if sentence.shape[-1] != self.config.sentence_dim:
            raise ValueError(
                f"sentence vectors have size {sentence.shape[-1]}, the network takes "
                f"{self.config.sentence_dim}"
            )
        cloud, per_point = self.points(points, normals)
        cloud = jnp.repeat(cloud, repeat, axis=0)
        return jnp.concatenate([cloud, self.text(tokens, sentence)], axis=-1), per_point

    def anchor_logits(self, base, per_point, repeat: int = 1) -> Float[Array, "b n"]:
        """Unnormalised log-probabilities of each cloud point as a grasp's anchor.
        Shapes: base (b, 2c) from `features`, per_point (b / repeat, n, f)."""
        key = self.anchor_key(per_point)  # (b / repeat, n, k)
        query = self.anchor_query(base)
        # Each cloud's keys against the queries of its `repeat` grasps, without copying
        # the keys per grasp (a (b, n, k) array and its gradient cost more than the
        # product itself).
        grouped = query.reshape(key.shape[0], repeat, query.shape[-1])
        logits = jnp.einsum("cnk,crk->crn", key, grouped).reshape(query.shape[0], -1)
        return logits / jnp.sqrt(float(query.shape[-1]))

    def condition(self, base, points, normals, per_point, anchor=None, repeat: int = 1):
        """The velocity network's conditioning: `base` (b, 2c), plus, for an anchored
        network, the anchor point's features (`anchor`: index into each grasp's cloud,
        shape (b,))."""
        if not self.config.anchored:
            return base
        if anchor is None:
            raise ValueError("an anchored network needs each grasp's anchor point")
        cloud = jnp.arange(anchor.shape[0]) // repeat  # each grasp's (shared) cloud

        def pick(x):  # each grasp's anchor row of its cloud, gathered without a copy per grasp
            return x[cloud, anchor]

        h = jnp.concatenate([pick(points) * 10.0, pick(normals), pick(per_point)], axis=-1)
        return jnp.concatenate([base, self.anchor_in(h)], axis=-1)

    def velocity(self, cond, x_t: Float[Array, "b d"], t: Float[Array, " b"]):
        te = self.time(jax.nn.gelu(time_embedding(t, self.config.cond_width)))
        c = jax.nn.gelu(self.cond(jnp.concatenate([cond, te], axis=-1)))
        h = self.inp(x_t)
        for block in self.blocks:
            h = block(h, c)
        return self.out(jax.nn.gelu(self.out_norm(h)))

    def __call__(self, points, normals, tokens, sentence, x_t, t, repeat: int = 1, anchor=None):
        """The velocity at x_t, t (`features`, `condition`, `velocity` in one call)."""
        base, per_point = self.features(points, normals, tokens, sentence, repeat)
        cond = self.condition(base, points, normals, per_point, anchor, repeat)
        return self.velocity(cond, x_t, t)
