"""Wire encoders: one per frontend protocol, each a function of the same run and event stream.

`StreamEncoder` is the contract (`encoder.py`); `NativeEncoder` is our own `:run` framing
(`native.py`); `replay.py` encodes a followed run (reattach) with any encoder. The run machinery
(`app/server/_run_stream.py`, `app/runs`) is shared: an encoder never starts, cancels or
stores anything.
"""

from __future__ import annotations

from app.server.wire.encoder import RunEnd, StreamEncoder
from app.server.wire.native import NativeEncoder
from app.server.wire.replay import encode_followed

__all__ = ["NativeEncoder", "RunEnd", "StreamEncoder", "encode_followed"]
