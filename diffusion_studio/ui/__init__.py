"""The studio window: PySide6 and pyqtgraph over diffusion_studio.core."""
