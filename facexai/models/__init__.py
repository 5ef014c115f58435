"""Models stage: backbones, training, loading."""
