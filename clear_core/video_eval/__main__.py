"""``python -m clear_core.video_eval DIR --detector SPEC``: the evaluate-videos command on its own."""

import sys

from clear_core.video_eval.cli import main

sys.exit(main())
