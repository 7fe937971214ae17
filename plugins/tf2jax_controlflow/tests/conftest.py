"""Fixtures shared by the controlflow plugin's tests."""

import pytest
from tensorflow.python.ops import control_flow_util


@pytest.fixture
def control_flow_v1():
  """TF1 frames (Switch/Merge/Enter/Exit) while the test builds graphs, as a TF1 program
  writes them: control flow v2 off, restored afterwards."""
  old = control_flow_util.ENABLE_CONTROL_FLOW_V2
  control_flow_util.ENABLE_CONTROL_FLOW_V2 = False
  try:
    yield
  finally:
    control_flow_util.ENABLE_CONTROL_FLOW_V2 = old
