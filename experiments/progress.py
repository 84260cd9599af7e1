"""A progress bar for training runs: env steps, steps/s, ETA and the latest eval metric."""

from __future__ import annotations

from tqdm import tqdm


class Progress:
    """Wraps tqdm over env steps; `enabled=False` prints nothing (batch jobs)."""

    def __init__(self, total_steps: int, enabled: bool = True):
        self.bar = tqdm(
            total=total_steps, unit="step", unit_scale=True, disable=not enabled, dynamic_ncols=True
        )

    def update(self, env_steps: int, steps_per_second: float, name: str, value: float) -> None:
        """Advances to env_steps and shows steps/s and the latest eval metric `name`."""
        self.bar.update(env_steps - self.bar.n)
        self.bar.set_postfix({"sps": f"{steps_per_second:,.0f}", name: f"{value:.2f}"})

    def close(self) -> None:
        self.bar.close()
