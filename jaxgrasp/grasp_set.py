"""A set of grasps of one hand on one object, with what is needed to reload both."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from jaxgrasp._io import write_npz_atomic
from sim.grasps import GraspPoses

_ARRAYS = ("root_pos", "root_quat", "q_pregrasp", "q_grasp", "q_squeeze", "root_pos_squeeze")
# What numpy raises for a file that is not a readable .npz (at open or at member read).
_UNREADABLE = (OSError, ValueError, EOFError, zipfile.BadZipFile)
FORMAT_VERSION = 2
# Version 1 had no root_pos_squeeze: its grasps were squeezed with the root held still.
_READABLE_VERSIONS = (1, 2)


class GraspSetError(ValueError):
    """A grasp-set file is missing, unreadable or inconsistent."""


@dataclasses.dataclass(frozen=True)
class GraspSet:
    """Grasps (object frame) of hand `hand` on the object `object_ref` names.

    Fields:
        root_pos: hand root positions. Shape: (B, 3).
        root_quat: hand root orientations, wxyz. Shape: (B, 4).
        q_pregrasp / q_grasp / q_squeeze: independent joints before closing, at the
            grasp, and the squeeze targets. Shape: (B, n_q) each.
        energy: total energy of each grasp (NaN if unknown). Shape: (B,).
        terms: per-term energies {name: (B,)}; for samples `generate` chose from more,
            their fit to the cloud ("cloud_depth_mm", "cloud_gap_mm"); for samples it
            opened out of the cloud, how far ("palm_back_mm", "finger_open_rad").
        hand: hand registry name (`kinematics.load_hand`).
        object_ref: `procedural:CATEGORY:SEED` or a mesh path
            (`jaxgrasp.objects.object_from_reference`).
        object_name: the object's name (used in captions).
        object_scale: scale the mesh is loaded with.
        part: target part name, or None for whole-object grasps.
        mode: contact mode ("wrap", "pinch", ...).
        fingers: the contact candidates the grasps were optimized with.
        table_height: the table plane z = table_height the object rests on (tabletop
            grasps; validation adds it to the scene), or None.
        root_pos_squeeze: hand root position held from the squeeze on (see
            `sim.grasp_stages`); None means `root_pos` (the root held still).
            Shape: (B, 3).
    """

    root_pos: np.ndarray
    root_quat: np.ndarray
    q_pregrasp: np.ndarray
    q_grasp: np.ndarray
    q_squeeze: np.ndarray
    energy: np.ndarray
    terms: dict[str, np.ndarray]
    hand: str
    object_ref: str
    object_name: str
    object_scale: float = 1.0
    part: str | None = None
    mode: str = "wrap"
    fingers: tuple[str, ...] = ()
    table_height: float | None = None
    root_pos_squeeze: np.ndarray | None = None

    def __post_init__(self):
        if self.root_pos_squeeze is None:
            object.__setattr__(self, "root_pos_squeeze", np.array(self.root_pos, copy=True))
        b = np.asarray(self.root_pos).shape[0] if np.ndim(self.root_pos) == 2 else -1
        shapes = {k: np.shape(getattr(self, k)) for k in _ARRAYS}
        n_q = shapes["q_grasp"][-1] if len(shapes["q_grasp"]) == 2 else -1
        expected = {
            "root_pos": (b, 3),
            "root_quat": (b, 4),
            "q_pregrasp": (b, n_q),
            "q_grasp": (b, n_q),
            "q_squeeze": (b, n_q),
            "root_pos_squeeze": (b, 3),
        }
        bad = [f"{k} {shapes[k]}" for k in _ARRAYS if shapes[k] != expected[k] or b < 0]
        if bad or np.shape(self.energy) != (b,):
            raise GraspSetError(f"inconsistent grasp-set arrays: {', '.join(bad) or 'energy'}")
        for k in _ARRAYS:
            if not np.all(np.isfinite(getattr(self, k))):
                raise GraspSetError(f"grasp set has non-finite values in {k}")

    @property
    def count(self) -> int:
        return int(np.shape(self.root_pos)[0])

    def poses(self) -> GraspPoses:
        """The arrays the simulator needs."""
        return GraspPoses(**{k: np.asarray(getattr(self, k), dtype=np.float64) for k in _ARRAYS})

    def take(self, index) -> GraspSet:
        """A subset (numpy index / mask / slice)."""
        arrays = {k: np.asarray(getattr(self, k))[index] for k in _ARRAYS}
        return dataclasses.replace(
            self,
            **arrays,
            energy=np.asarray(self.energy)[index],
            terms={k: np.asarray(v)[index] for k, v in self.terms.items()},
        )

    def metadata(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "hand": self.hand,
            "object_ref": self.object_ref,
            "object_name": self.object_name,
            "object_scale": self.object_scale,
            "part": self.part,
            "mode": self.mode,
            "fingers": list(self.fingers),
            "table_height": self.table_height,
            "count": self.count,
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything as named numpy arrays (the metadata as a JSON string array)."""
        arrays = {k: np.asarray(getattr(self, k)) for k in _ARRAYS}
        arrays["energy"] = np.asarray(self.energy)
        arrays.update({f"term:{k}": np.asarray(v) for k, v in self.terms.items()})
        arrays["metadata"] = np.array(json.dumps(self.metadata()))
        return arrays

    def save(self, path: str | Path, extra: dict[str, np.ndarray] | None = None) -> Path:
        """Write an .npz (arrays + JSON metadata), atomically; `extra` arrays are stored
        under `extra:NAME` (see `load_extra`)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        arrays = self.to_arrays()
        arrays.update({f"extra:{k}": np.asarray(v) for k, v in (extra or {}).items()})
        write_npz_atomic(path, arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GraspSet:
        return cls.from_arrays(_read_npz(path), str(path))

    @staticmethod
    def load_extra(path: str | Path) -> dict[str, np.ndarray]:
        """The `extra` arrays written by `save`."""
        return _extra(_read_npz(path))

    @classmethod
    def load_with_extra(cls, path: str | Path) -> tuple[GraspSet, dict[str, np.ndarray]]:
        """`load` and `load_extra` from one read of the file."""
        arrays = _read_npz(path)
        return cls.from_arrays(arrays, str(path)), _extra(arrays)

    @classmethod
    def from_arrays(cls, z: dict[str, np.ndarray], where: str = "arrays") -> GraspSet:
        """Inverse of `to_arrays`."""
        try:
            meta = json.loads(str(z["metadata"]))
            version = meta.get("format_version")
        except (ValueError, KeyError) as err:
            raise GraspSetError(f"{where} is not a jaxgrasp grasp set ({err})") from None
        if version not in _READABLE_VERSIONS:
            raise GraspSetError(
                f"{where}: grasp-set format {version} is not one of {_READABLE_VERSIONS}; "
                "upgrade jaxgrasp to read it"
            )
        try:
            arrays = {k: z[k] for k in _ARRAYS if k != "root_pos_squeeze" or version != 1}
            energy = z["energy"]
            terms = {k[5:]: z[k] for k in z if k.startswith("term:")}
        except KeyError as err:
            raise GraspSetError(f"{where} is not a jaxgrasp grasp set ({err})") from None
        return cls(
            **arrays,
            energy=energy,
            terms=terms,
            hand=meta["hand"],
            object_ref=meta["object_ref"],
            object_name=meta["object_name"],
            object_scale=float(meta["object_scale"]),
            part=meta["part"],
            mode=meta["mode"],
            fingers=tuple(meta["fingers"]),
            table_height=meta.get("table_height"),
        )


def _extra(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[6:]: v for k, v in arrays.items() if k.startswith("extra:")}


def _read_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise GraspSetError(f"grasp set not found: {path}")
    try:
        z = np.load(path, allow_pickle=False)
    except _UNREADABLE:
        z = None
    if not isinstance(z, np.lib.npyio.NpzFile):
        # numpy's own message for a non-archive suggests unpickling it; never do that.
        raise GraspSetError(
            f"{path} is not a .npz archive (truncated, or not written by GraspSet.save); "
            "re-create it with GraspSet.save"
        )
    try:
        with z:
            return {k: z[k] for k in z.files}
    except _UNREADABLE as err:
        raise GraspSetError(f"{path} is a damaged .npz archive ({err}); re-create it") from None
