"""MuJoCo / MJX validation of grasps (DESIGN.md section 8); depends on `kinematics` only."""

__all__: list[str] = []
