"""The CPU testbed: a small text-to-video diffusion model of a synthetic world of the paper's concepts.

world.py (scene specs and vocabulary), sprites.py + render.py (procedural clips), captions.py (pack
vocabulary and templates), model.py (scene latent + denoiser), pipeline.py (``TestbedPipeline``),
train.py (training), detector.py (frame detector), rate.py + cli.py (generative rate).
It makes erasure measurable on a CPU; it is not a stand-in for the quality of a real video model.
"""
