"""CLEAR Workbench engine: concept sets, text-encoder capture, SAE layer search and erasure.

No UI code lives here; the Gradio app and the command line are thin layers over these modules.
"""

__version__ = "0.1.0"
