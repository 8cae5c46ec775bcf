"""napari-resfuse: infrared and visible image fusion with ResNet-152 features.

The public API; nothing here imports napari or Qt.
"""

__version__ = "0.1.0"
