"""The simulator: device twin, virtual sorter, demo (``sortcam.sim``)."""
