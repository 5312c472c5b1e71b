"""Training, evaluation, quantization and the shipped model (``sortcam.model``)."""
