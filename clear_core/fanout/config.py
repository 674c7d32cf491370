"""Where a fan-out runs and with what resources: the ``--ray`` flags of every command that fans out.

Nothing here imports Ray: a command without ``--ray`` reads these flags, finds ``--ray`` absent and
goes on exactly as before.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

__all__ = ["FanoutConfig", "add_ray_arguments", "config_from_args"]

LOCAL = "local"
"""``--ray`` without an address: start a Ray instance on this machine for this run."""


@dataclass
class FanoutConfig:
    """A Ray fan-out: the cluster, the workers and what each task reserves."""

    address: str = LOCAL
    """'local' (a new Ray instance on this machine), 'auto' (the cluster this machine joined with
    ``ray start``), ``host:port`` of a head node, or ``ray://host:10001`` (Ray Client)."""
    workers: int | None = None
    """Workers (Ray actors, each loading the model once); None: as many as the cluster's free CPUs
    (and GPUs, with ``gpus_per_task``) hold, at most one per task."""
    cpus_per_task: float = 1.0
    """CPUs each worker reserves; also its torch thread count (at least 1)."""
    gpus_per_task: float = 0.0
    """GPUs each worker reserves (0.5 puts two workers on one GPU); 0: CPU only."""

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.strip():
            raise ValueError(
                "--ray ADDRESS is empty; give 'auto', host:port or ray://host:port, or no address"
            )
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"--ray-workers must be an integer ≥ 1, got {self.workers!r}")
        if not (math.isfinite(self.cpus_per_task) and self.cpus_per_task > 0):
            raise ValueError(f"--ray-cpus-per-task must be a number > 0, got {self.cpus_per_task!r}")
        if not (math.isfinite(self.gpus_per_task) and self.gpus_per_task >= 0):
            raise ValueError(f"--ray-gpus-per-task must be a number ≥ 0, got {self.gpus_per_task!r}")

    @property
    def threads(self) -> int:
        """Torch threads in each worker: its CPUs, at least one (more would fight the other workers)."""
        return max(1, int(self.cpus_per_task))


def add_ray_arguments(parser: argparse.ArgumentParser, unit: str) -> None:
    """Add ``--ray [ADDRESS]`` and the worker flags to a command; ``unit`` says what one task is."""
    group = parser.add_argument_group("fan out on Ray (docs/distributed.md)")
    group.add_argument(
        "--ray",
        nargs="?",
        const=LOCAL,
        metavar="ADDRESS",
        help=f"run one task per {unit} on Ray workers; a rerun skips finished tasks. Without ADDRESS a local "
        "Ray instance uses this machine; 'auto' joins the cluster started here with 'ray start', or give "
        "the head's host:port",
    )
    group.add_argument(
        "--ray-workers", type=int, help="workers (default: as many as the cluster's CPUs/GPUs hold)"
    )
    group.add_argument(
        "--ray-cpus-per-task", type=float, default=1.0, help="CPUs (and torch threads) per worker (default 1)"
    )
    group.add_argument("--ray-gpus-per-task", type=float, default=0.0, help="GPUs per worker, e.g. 1 or 0.5")


def config_from_args(args: argparse.Namespace) -> FanoutConfig | None:
    """The fan-out the flags ask for, or None without ``--ray`` (other ``--ray-*`` flags then refused)."""
    if getattr(args, "ray", None) is None:
        given = [
            flag
            for flag, value, default in (
                ("--ray-workers", getattr(args, "ray_workers", None), None),
                ("--ray-cpus-per-task", getattr(args, "ray_cpus_per_task", 1.0), 1.0),
                ("--ray-gpus-per-task", getattr(args, "ray_gpus_per_task", 0.0), 0.0),
            )
            if value != default
        ]
        if given:
            raise ValueError(f"{given[0]} needs --ray")
        return None
    return FanoutConfig(args.ray.strip(), args.ray_workers, args.ray_cpus_per_task, args.ray_gpus_per_task)
