"""Grasp energies (pure functions of one hand's state and a prepared object).

Populated by the energies work (DESIGN.md section 6); depends on `kinematics` only.
"""

__all__: list[str] = []
