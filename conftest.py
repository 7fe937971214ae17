"""Shared pytest setup: quiet TensorFlow, bounded threads on small CI machines."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
