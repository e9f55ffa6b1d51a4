"""The realtime layer: WebSocket ``/ws/rooms/{room}`` (docs/realtime.md).

``resource.build_realtime`` wires it: a ``ConnectionRuntime`` (connections.py) and the resource the
Site mounts at ``/ws``. protocol.py is the thin Autobahn adapter; session.py and room.py hold the
sans-IO state machines; auth.py checks who connects; client.py is a Python client.
"""
