#!/usr/bin/env bash
# The end-to-end flow of tests/e2e/, against a server that is already running, for a person to
# watch (docs/workers.md). Each step prints what it does and what it saw; it stops at the first
# thing that is not as expected.
#
#   scripts/e2e.sh                       # server http://127.0.0.1:8080, user root
#   SYNCTV_SERVER=http://host:8080 SYNCTV_USER=alice SYNCTV_PASSWORD=... scripts/e2e.sh
#
# Needs: synctv and twist (the CLI and Twisted's, from synctv's install), ffmpeg, curl, python3. The media is served from this machine on
# MEDIA_HOST:MEDIA_PORT (127.0.0.1:8765): the server must be allowed to fetch it, e.g.
# `[proxy] allow_networks = ["127.0.0.0/8"]` for a server on this machine.
# Sections are functions run in order (`main`); `scripts/e2e.sh login media rooms` runs only
# those. Later sections use what earlier ones made (ROOM, MEDIA, ...). `live` runs
# scripts/e2e_live.sh against this server and SYNCTV_NODE_B when that is set.
set -euo pipefail

SERVER=${SYNCTV_SERVER:-http://127.0.0.1:8080}
USER_NAME=${SYNCTV_USER:-root}
DATA=${SYNCTV_DATA:-./synctv-data}
MEDIA_HOST=${MEDIA_HOST:-127.0.0.1}
MEDIA_PORT=${MEDIA_PORT:-8765}
BOUND_S=${BOUND_S:-60}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/synctv-e2e.XXXXXX")
PIDS=()
export SYNCTV_SERVER=$SERVER XDG_CONFIG_HOME="$WORK/config"

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
stv() { synctv --json "$@"; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }

# wait_for DESCRIPTION COMMAND...: run COMMAND every half second until it succeeds (BOUND_S at most)
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + BOUND_S))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "not within ${BOUND_S}s: $what"
    sleep 0.5
  done
  echo "ok: $what"
}

login() {
  say "log in to $SERVER as $USER_NAME"
  local password=${SYNCTV_PASSWORD:-}
  if [ -z "$password" ] && [ -r "$DATA/root-password" ]; then password=$(cat "$DATA/root-password"); fi
  [ -n "$password" ] || fail "set SYNCTV_PASSWORD (or SYNCTV_DATA to the server's data folder)"
  synctv login "$USER_NAME" --password "$password"
}

media() {
  say "make two short clips with ffmpeg and serve them on http://$MEDIA_HOST:$MEDIA_PORT"
  mkdir -p "$WORK/media"
  for spec in one:4 two:3; do
    ffmpeg -v error -f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440 -t "${spec#*:}" \
      -pix_fmt yuv420p -c:v libx264 -preset ultrafast -c:a aac -movflags +faststart "$WORK/media/${spec%%:*}.mp4"
  done
  # twisted.web's static files honour Range (twist comes with synctv's Twisted)
  twist web --path "$WORK/media" --listen "tcp:$MEDIA_PORT:interface=$MEDIA_HOST" >"$WORK/media.log" 2>&1 &
  PIDS+=($!)
  wait_for "the media server answers" curl -fsS -o /dev/null "http://$MEDIA_HOST:$MEDIA_PORT/one.mp4"
  MEDIA="http://$MEDIA_HOST:$MEDIA_PORT"
}

rooms() {
  local tag; tag=$(date +%H%M%S)
  say "create room e2e-$tag (watched) and e2e-quiet-$tag (nobody in it); add the clips without durations"
  ROOM=$(stv room create "e2e-$tag" | field 'd["id"]')
  QUIET=$(stv room create "e2e-quiet-$tag" | field 'd["id"]')
  ONE=$(stv media add "$ROOM" --url "$MEDIA/one.mp4" --title one | field 'd["id"]')
  TWO=$(stv media add "$ROOM" --url "$MEDIA/two.mp4" --title two | field 'd["id"]')
  stv media add "$QUIET" --url "$MEDIA/one.mp4" --title quiet >/dev/null
  stv media list "$QUIET" > "$WORK/quiet-before.json"
  synctv room set "$ROOM" --playlist next
}

watch_room() {
  say "open a WebSocket in $ROOM (synctv watch): the room is now active on the server"
  synctv watch "$ROOM" > "$WORK/watch.log" 2>&1 &
  PIDS+=($!)
  wait_for "the watcher is connected" grep -q . "$WORK/watch.log"
  cat "$WORK/watch.log"
}

durations_known() { stv media list "$ROOM" | field 'all(m["duration"] for m in d["media"]) or exit(1)'; }

probe() {
  say "the server probes the durations of the active room's items"
  local deadline=$((SECONDS + BOUND_S))
  until durations_known >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      stv media list "$ROOM" | field '"\n".join(m["title"] + ": probe_error=" + str(m["probe_error"]) for m in d["media"])'
      fail "not within ${BOUND_S}s: both items have a duration"
    fi
    sleep 0.5
  done
  echo "ok: both items have a duration"
  synctv media list "$ROOM"
  say "the quiet room (no connection) keeps its metadata"
  stv media list "$QUIET" > "$WORK/quiet-after.json"
  cmp -s "$WORK/quiet-before.json" "$WORK/quiet-after.json" || fail "the quiet room's media changed"
  echo "ok: unchanged"; synctv media list "$QUIET"
}

urls() {
  say "curl the URLs the server hands out (direct and proxy), bytes 100-1099"
  synctv media info "$ROOM" "$ONE"
  local expected; expected=$(curl -fsS -r 100-1099 "$MEDIA/one.mp4" | sha256sum)
  for mode in direct proxy; do
    local url
    url=$(stv media info "$ROOM" "$ONE" | field "next(i['url'] for i in d['infos'] if i['mode'] == '$mode')")
    case $url in /*) url="$SERVER$url";; esac
    local got; got=$(curl -fsS -r 100-1099 -o "$WORK/$mode.part" -w '%{http_code}' "$url")
    [ "$got" = 206 ] || fail "$mode answered $got, not 206"
    [ "$(sha256sum < "$WORK/$mode.part")" = "$expected" ] || fail "$mode served other bytes"
    echo "ok: $mode 206, the file's bytes"
  done
}

ended() { stv playback show "$ROOM" | field 'd["ended"] or exit(1)'; }

playlist() {
  say "play 'one'; the room advances to 'two' once, then ends (settings.playlist = next)"
  local start; start=$(stv playback set "$ROOM" --media "$ONE" --play | field 'd["version"]')
  wait_for "the room ended after its last item" ended
  synctv playback show "$ROOM"
  local final; final=$(stv playback show "$ROOM" | field 'd["version"]')
  [ "$final" = $((start + 2)) ] || fail "version $final after play at $start: expected exactly one advance and the end"
  echo "ok: versions $start (play) -> $((start + 1)) (two) -> $final (ended)"
  say "what the WebSocket saw"; cat "$WORK/watch.log"
}

live() {
  # Live on any node needs a second node on the same database: scripts/e2e_live.sh does it.
  if [ -z "${SYNCTV_NODE_B:-}" ]; then
    say "live: skipped (set SYNCTV_NODE_B=http://other-node:8080 and SYNCTV_PASSWORD to check live on any node)"
    return 0
  fi
  SYNCTV_USER=$USER_NAME "$(dirname "$0")/e2e_live.sh" "$SERVER" "$SYNCTV_NODE_B"
}

main() {
  local sections=("$@")
  [ ${#sections[@]} -gt 0 ] || sections=(login media rooms watch_room probe urls playlist live)
  for section in "${sections[@]}"; do "$section"; done
  say "all good"
}

main "$@"
