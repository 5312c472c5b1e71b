"""sortcam: edge waste sorting with an ESP32-CAM, TFLM, MQTT and a serial sorter.

The distribution maps the repository's top-level folders to sub-packages:
``model/`` -> ``sortcam.model``, ``host/`` -> ``sortcam.host``, ``sim/`` -> ``sortcam.sim``,
``tools/`` -> ``sortcam.tools``. Shared pieces (errors, the MQTT and serial contracts,
the one preprocessing, the model card, the TFLM runtime wrapper) live here.
"""

__version__ = "0.1.0"
