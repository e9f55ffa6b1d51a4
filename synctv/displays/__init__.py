"""LAN synchronized displays (docs/displays.md): screens of a ``display`` room, events that start a
show on all of them at one instant, uploaded videos and the idle image.

- ``actions``: the use-cases (screens, sessions, events, triggers);
- ``videos``: uploaded videos and the idle image (files under the data directory, ffprobe);
- ``runtime``: wires them to the Site, the UDP trigger ports and the end-of-video worker.
"""
