"""The MQTT sorter controller (``sortcam.host``)."""
