"""Words the command line, the library and the checkpoints share; importable without torch (the CLI's help lists them)."""

# an option decided from the data (engine.recipe) or the hardware (runtime.resolve_precision)
AUTO = "auto"
PRECISIONS = (AUTO, "bf16", "fp16", "fp32")
