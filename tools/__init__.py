"""Command-line tools: export to C, flash, monitor, benchmarks (``sortcam.tools``)."""
