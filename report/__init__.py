"""relu-pieces reporting: growth fits, drift gate and the HTML report."""

__all__ = []
