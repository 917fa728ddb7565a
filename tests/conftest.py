"""Session-wide test settings: Flower stays quiet and inside the project."""

from __future__ import annotations

from experiments.simulate import quiet_flower_env

quiet_flower_env()
