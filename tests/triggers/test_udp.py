"""UDP triggers over real sockets: packets start the show, bad ones change nothing, ports follow
the events, a port in use is reported while the others keep working."""

from __future__ import annotations

import pytest_twisted

from tests.displays.support import free_udp_port, hold_udp_port, send_udp, udp_port_in_use


def _counter(world, port: int, result: str) -> float:
    value = world.site.api.metrics.registry.get_sample_value(
        "synctv_trigger_datagrams_total", {"port": str(port), "result": result})
    return value or 0.0


@pytest_twisted.ensureDeferred
async def test_a_packet_schedules_the_start_at_now_plus_lead(show):
    """SHOW_START to the event's port: the room plays the event's media from 0 at now + lead_ms."""
    port = free_udp_port()
    event = await show.event(udp_port=port, udp_payload="SHOW_START", lead_ms=5000)
    assert event["status"] == {"udp": "listening", "port": port}
    before = await show.state()
    changed = show.state_change()
    send_udp(port, b"SHOW_START")
    state = await changed
    assert state == {"media_id": show.media["id"], "playing": True, "ended": False, "position": 0.0,
                     "rate": 1.0, "at_ms": show.world.clock() + 5000, "version": before["version"] + 1,
                     "event_id": event["id"]}
    assert await show.state() == state  # stored, not only announced
    assert _counter(show.world, port, "matched") == 1


@pytest_twisted.ensureDeferred
async def test_trailing_cr_lf_is_ignored_and_wrong_payloads_change_nothing(show):
    """Wrong payloads are counted as unknown and change nothing; SHOW_START\\r\\n still matches."""
    port = free_udp_port()
    event = await show.event(udp_port=port, udp_payload="SHOW_START")
    before = await show.state()
    changed = show.state_change()
    for wrong in (b"show_start", b"SHOW_STOP", b"SHOW_START!", b"\xff\xfe", b"", b"A" * 2000):
        send_udp(port, wrong)
    send_udp(port, b"SHOW_START\r\n")  # after the wrong ones: its change proves they were handled
    state = await changed
    assert state["event_id"] == event["id"] and state["version"] == before["version"] + 1
    assert (await show.state())["version"] == before["version"] + 1
    assert _counter(show.world, port, "unknown") == 6


@pytest_twisted.ensureDeferred
async def test_a_source_outside_allowed_sources_is_refused(show):
    """An event that allows 127.0.0.1 only ignores 127.0.0.2; another event on the port still works."""
    port = free_udp_port()
    guarded = await show.event("guarded", udp_port=port, udp_payload="GO", allowed_sources=["127.0.0.1/32"])
    other = await show.event("other", udp_port=port, udp_payload="OTHER")
    before = await show.state()
    changed = show.state_change()
    send_udp(port, b"GO", source="127.0.0.2")
    send_udp(port, b"OTHER", source="127.0.0.2")
    state = await changed
    assert state["event_id"] == other["id"] and state["version"] == before["version"] + 1
    assert _counter(show.world, port, "refused") == 1
    changed = show.state_change()
    send_udp(port, b"GO", source="127.0.0.1")
    assert (await changed)["event_id"] == guarded["id"]


@pytest_twisted.ensureDeferred
async def test_ports_are_bound_and_released_as_events_change(show):
    """Creating binds the port, moving the event moves the binding, deleting releases it."""
    first, second = free_udp_port(), free_udp_port()
    assert not udp_port_in_use(first)
    event = await show.event(udp_port=first, udp_payload="SHOW_START")
    assert udp_port_in_use(first)
    client, token = show.world.client, show.world.tokens["admin"]  # only site admins set UDP ports
    r = await client.patch(f"/api/events/{event['id']}", {"udp_port": second}, token=token)
    assert r.status == 200 and r.json["event"]["status"]["udp"] == "listening"
    assert udp_port_in_use(second) and not udp_port_in_use(first)
    changed = show.state_change()
    send_udp(second, b"SHOW_START")
    assert (await changed)["event_id"] == event["id"]
    r = await client.patch(f"/api/events/{event['id']}", {"udp_port": None, "udp_payload": None}, token=token)
    assert r.json["event"]["status"] == {"udp": "off"} and not udp_port_in_use(second)
    r = await client.patch(f"/api/events/{event['id']}", {"udp_port": second, "udp_payload": "X"}, token=token)
    assert udp_port_in_use(second)
    r = await client.delete(f"/api/events/{event['id']}", token=token)
    assert r.status == 200 and not udp_port_in_use(second)


@pytest_twisted.ensureDeferred
async def test_two_events_share_a_port_until_the_last_one_goes(show):
    """A port stays bound while any event uses it."""
    port = free_udp_port()
    a = await show.event("a", udp_port=port, udp_payload="A")
    await show.event("b", udp_port=port, udp_payload="B")
    token = show.world.tokens["alice"]
    await show.world.client.delete(f"/api/events/{a['id']}", token=token)
    assert udp_port_in_use(port)
    changed = show.state_change()
    send_udp(port, b"B")
    assert (await changed)["version"] >= 1
    await show.world.client.delete("/api/events/b", token=token)
    assert not udp_port_in_use(port)


@pytest_twisted.ensureDeferred
async def test_a_port_in_use_is_reported_while_other_ports_keep_working(show):
    """A port someone else holds is the event's status; another event's port still triggers; once
    the port is free, the next change binds it."""
    blocker = hold_udp_port()
    busy = blocker.getsockname()[1]
    free = free_udp_port()
    try:
        stuck = await show.event("stuck", udp_port=busy, udp_payload="SHOW_START")
        assert stuck["status"]["udp"] == "error" and "in use" in stuck["status"]["error"]
        working = await show.event("working", udp_port=free, udp_payload="SHOW_START")
        assert working["status"]["udp"] == "listening"
        r = await show.world.client.get("/api/events", token=show.world.tokens["alice"])
        statuses = {e["name"]: e["status"]["udp"] for e in r.json["events"]}
        assert statuses == {"stuck": "error", "working": "listening"}
        changed = show.state_change()
        send_udp(free, b"SHOW_START")
        assert (await changed)["event_id"] == working["id"]
    finally:
        blocker.close()
    r = await show.world.client.patch("/api/events/stuck", {"lead_ms": 1000}, token=show.world.tokens["alice"])
    assert r.json["event"]["status"] == {"udp": "listening", "port": busy}
    changed = show.state_change()
    send_udp(busy, b"SHOW_START")
    assert (await changed)["event_id"] == stuck["id"]


@pytest_twisted.ensureDeferred
async def test_the_cooldown_also_holds_for_udp(show):
    """A second packet within the cooldown changes nothing; after it, the next one starts again."""
    port = free_udp_port()
    await show.event(udp_port=port, udp_payload="GO", cooldown_s=10)
    other = await show.event("sentinel", udp_port=port, udp_payload="SENTINEL")
    changed = show.state_change()
    send_udp(port, b"GO")
    first = await changed
    changed = show.state_change()
    send_udp(port, b"GO")  # cooling down: refused
    send_udp(port, b"SENTINEL")
    second = await changed
    assert second["event_id"] == other["id"] and second["version"] == first["version"] + 1
    show.world.clock.advance(10_000)
    changed = show.state_change()
    send_udp(port, b"GO")
    assert (await changed)["event_id"] == first["event_id"]
