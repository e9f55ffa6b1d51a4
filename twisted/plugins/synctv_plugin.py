"""twistd plugin: ``twistd -n synctv``. Kept tiny so ``twistd --help`` stays fast."""

from twisted.application.service import ServiceMaker

synctv = ServiceMaker(
    "synctv",
    "synctv.tap",
    "Watch-together rooms, LAN synchronized displays and live streams",
    "synctv",
)
