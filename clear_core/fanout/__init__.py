"""Fan work out over Ray workers, resumable: ``--ray [ADDRESS]`` on ``generate``, ``evaluate-videos``,
``testbed rate`` and ``sweep`` (docs/distributed.md).

One idea a module:

* :mod:`~clear_core.fanout.config` — the ``--ray`` flags and :class:`FanoutConfig` (no Ray import);
* :mod:`~clear_core.fanout.engine` — a pool of workers (Ray actors that load their model once), tasks
  handed out with ``ray.wait``, progress, failures named by task;
* :mod:`~clear_core.fanout.generate` — one task per (prompt, seed, variant), the same bytes as ``generate``;
* :mod:`~clear_core.fanout.evaluate` — one task per video of ``evaluate-videos``;
* :mod:`~clear_core.fanout.rate` — ``testbed rate`` in batches of the same clips it renders alone;
* :mod:`~clear_core.fanout.sweep_cli` — the ``sweep`` command: ``search`` for many concepts, one task each.

Ray is imported only by the engine, only when a command is given ``--ray``.
"""

from clear_core.fanout.config import FanoutConfig, add_ray_arguments, config_from_args

__all__ = ["FanoutConfig", "add_ray_arguments", "config_from_args"]
