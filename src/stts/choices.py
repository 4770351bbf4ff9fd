"""Words the command line, the library and the checkpoints share; importable without torch (the CLI's help lists them)."""

# an option decided from the data (engine.recipe) or the hardware (runtime.resolve_precision)
AUTO = "auto"
PRECISIONS = (AUTO, "bf16", "fp16", "fp32")
# the shape of a clip's view (stts.clip.ClipSpec.region): a square of the short side, or the frame's own shape
REGIONS = ("square", "frame")
