"""The operator console (``sortcam console``): watch the line, classify uploads, label
uncertain items, retrain and promote a model. Flask, server-rendered pages with a little
JavaScript; no front-end build.

Pieces: :mod:`.store` (items and device status fed from MQTT, SQLite under the data
dir), :mod:`.feed` (the MQTT subscriber), :mod:`.classify` (the int8 model in the TFLM
runtime), :mod:`.labels` (folder-per-class training data), :mod:`.retrain` (background
jobs in a subprocess, evaluation, promotion), :mod:`.app` (the web app and
:func:`~sortcam.console.app.start_console` for embedding in ``sortcam demo``).
"""
