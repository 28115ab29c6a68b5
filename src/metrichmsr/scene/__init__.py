"""The metric scene: depth backends, human-anchored refinement, ground plane and export."""
