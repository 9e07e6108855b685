"""halt-rollout: the emergency stop for a Microsoft Store package rollout."""

__version__ = "1.0.0"
