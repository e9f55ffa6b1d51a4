"""Store operations of displays (schema 0004) on both backends: screens, events, videos, and the
cooldown's compare-and-set."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import DeferredList

from synctv.core.displays import Display, DisplayEvent, Video
from synctv.core.errors import Conflict, NotFound
from tests.store.conftest import T0, Builders, new_id


def display_value(room_id: str, name: str = "screen-1") -> Display:
    return Display(id=new_id(), name=name, public_id=new_id(), room_id=room_id, created_at=T0)


def event_value(room_id: str, media_id: str | None, name: str = "show", **fields) -> DisplayEvent:
    return DisplayEvent(id=new_id(), name=name, room_id=room_id, media_id=media_id, created_at=T0, **fields)


def video_value(**fields) -> Video:
    base = dict(id=new_id(), title="Intro", file_name="f", size=3 * 2**32, content_type="video/mp4",
                format="mp4", duration=12.5, created_at=T0)
    return Video(**{**base, **fields})


@pytest_twisted.ensureDeferred
async def test_displays_round_trip(store, make: Builders):
    """A display is stored, found by id, name and public id, listed, changed and deleted."""
    room = await make.room(kind="display")
    display = await store.create_display(display_value(room.id))
    assert await store.get_display(display.id) == display
    assert await store.get_display_by_name("screen-1") == display
    assert await store.get_display_by_public_id(display.public_id) == display
    assert await store.list_displays() == [display]
    renamed = await store.update_display(display.id, name="lobby")
    assert renamed.name == "lobby" and renamed.public_id == display.public_id
    assert await store.delete_display(display.id) is True
    assert await store.get_display(display.id) is None
    assert await store.delete_display(display.id) is False


@pytest_twisted.ensureDeferred
async def test_display_names_and_public_ids_are_unique(store, make: Builders):
    """A taken name is a Conflict naming the field; an unknown room is NotFound."""
    room = await make.room(kind="display")
    first = await store.create_display(display_value(room.id))
    with pytest.raises(Conflict) as info:
        await store.create_display(display_value(room.id))
    assert info.value.field == "name"
    with pytest.raises(Conflict):
        await store.create_display(Display(id=new_id(), name="other", public_id=first.public_id, room_id=room.id))
    with pytest.raises(NotFound):
        await store.create_display(display_value("no-such-room", name="x"))


@pytest_twisted.ensureDeferred
async def test_deleting_the_room_deletes_its_displays_and_events(store, make: Builders):
    """Screens and events go with their room."""
    room = await make.room(kind="display")
    item = await make.media(room)
    display = await store.create_display(display_value(room.id))
    event = await store.create_event(event_value(room.id, item.id))
    assert await store.delete_room(room.id)
    assert await store.get_display(display.id) is None and await store.get_event(event.id) is None


@pytest_twisted.ensureDeferred
async def test_events_round_trip(store, make: Builders):
    """Every field survives the store, including networks, fractional cooldowns and big times."""
    room = await make.room(kind="display")
    item = await make.media(room)
    event = event_value(room.id, item.id, udp_port=7777, udp_payload="SHOW_START",
                        allowed_sources=("192.168.1.0/24", "10.0.0.7/32"), cooldown_s=2.5, lead_ms=3000)
    assert await store.create_event(event) == event
    assert await store.get_event(event.id) == event
    assert await store.get_event_by_name("show") == event
    assert await store.list_events() == [event]
    changed = await store.update_event(event.id, udp_port=None, udp_payload=None, allowed_sources=(),
                                       lead_ms=0, name="show-2")
    assert (changed.udp_port, changed.udp_payload, changed.allowed_sources) == (None, None, ())
    assert (changed.lead_ms, changed.name, changed.cooldown_s) == (0, "show-2", 2.5)
    with pytest.raises(TypeError):
        await store.update_event(event.id, last_triggered_at=5)
    assert await store.delete_event(event.id) and await store.get_event(event.id) is None


@pytest_twisted.ensureDeferred
async def test_removing_the_media_item_leaves_the_event_without_media(store, make: Builders):
    """The event survives its media item with media_id null (it cannot fire until it gets another)."""
    room = await make.room(kind="display")
    item = await make.media(room)
    event = await store.create_event(event_value(room.id, item.id))
    assert await store.delete_media(room.id, item.id)
    assert (await store.get_event(event.id)).media_id is None


@pytest_twisted.ensureDeferred
async def test_event_names_are_unique(store, make: Builders):
    room = await make.room(kind="display")
    await store.create_event(event_value(room.id, None))
    with pytest.raises(Conflict):
        await store.create_event(event_value(room.id, None))


@pytest_twisted.ensureDeferred
async def test_claiming_a_trigger_is_compare_and_set(store, make: Builders):
    """The claim succeeds only while last_triggered_at is what the caller saw."""
    room = await make.room(kind="display")
    event = await store.create_event(event_value(room.id, None))
    assert await store.claim_event_trigger(event.id, None, T0 + 10) is True
    assert await store.claim_event_trigger(event.id, None, T0 + 11) is False
    assert (await store.get_event(event.id)).last_triggered_at == T0 + 10
    assert await store.claim_event_trigger(event.id, T0 + 9, T0 + 12) is False
    assert await store.claim_event_trigger(event.id, T0 + 10, T0 + 12) is True
    assert (await store.get_event(event.id)).last_triggered_at == T0 + 12
    assert await store.claim_event_trigger("no-such-event", None, T0) is False


@pytest_twisted.ensureDeferred
async def test_racing_claims_have_exactly_one_winner(store, make: Builders):
    """Ten claims based on the same observation, sent at once: one wins."""
    room = await make.room(kind="display")
    event = await store.create_event(event_value(room.id, None))
    results = await DeferredList([store.claim_event_trigger(event.id, None, T0 + i) for i in range(10)],
                                 consumeErrors=True)
    assert all(ok for ok, _ in results)
    assert sorted(won for _, won in results) == [False] * 9 + [True]


@pytest_twisted.ensureDeferred
async def test_videos_round_trip_and_upload_media_are_listed(store, make: Builders):
    """Videos (sizes past 2**32) are stored and renamed; upload items are found by provider."""
    user = await make.user()
    video = await store.create_video(video_value(created_by=user.id))
    assert await store.get_video(video.id) == video
    assert await store.list_videos() == [video]
    assert (await store.update_video(video.id, title="Outro")).title == "Outro"
    room = await make.room(kind="display")
    upload = await make.media(room, provider="upload", url=f"upload:{video.id}")
    await make.media(room)  # a direct item is not listed
    assert await store.list_upload_media() == [(room.id, upload.id, f"upload:{video.id}")]
    assert await store.delete_video(video.id) and await store.get_video(video.id) is None
    await store.delete_user(user.id)
