#!/usr/bin/env bash
# Live on any node, for a person to watch (tests/e2e/test_live_any_node.py is the automated twin).
#
# Against two running nodes on one PostgreSQL database:
#   SYNCTV_USER=root SYNCTV_PASSWORD=... scripts/e2e_live.sh http://node-a:8080 http://node-b:8080
# It logs in on node A, makes a room with an rtmp item, publishes a test pattern with
# ffmpeg to A, then reads from node B: the stream info (source relay, publisher = A), 3 s of
# HTTP-FLV from three viewers at once (A's stream info shows ONE viewer: B's relay), the HLS
# playlist and its newest segment; then it waits until B has released the stream and A is back to
# no viewer, stops the publish and waits until A released it too. Needs curl, jq, xxd and ffmpeg.
# Leaves the room behind (its name says when it was made).
set -euo pipefail

live_any_node() {
  local a=$1 b=$2 user=${SYNCTV_USER:-root} password=${SYNCTV_PASSWORD:?set SYNCTV_PASSWORD}
  local work token room media key info urls flv hls segment pid
  work=$(mktemp -d)
  trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$work"' RETURN

  say() { printf '\n== %s\n' "$*"; }
  api() { curl -fsS -H "Authorization: Bearer $token" "$@"; }
  info_of() { api "$1/api/rooms/$room/media/$media/stream"; }
  wait_until() {  # wait_until WHAT SECONDS COMMAND...
    local what=$1 seconds=$2; shift 2
    for _ in $(seq $((seconds * 2))); do "$@" && return 0; sleep 0.5; done
    echo "timed out waiting for $what" >&2; return 1
  }

  say "log in on A ($a) and make a live item"
  token=$(curl -fsS -H 'Content-Type: application/json' -d "$(jq -n --arg n "$user" --arg p "$password" \
    '{name: $n, password: $p}')" "$a/api/auth/login" | jq -r .token)
  room=$(api -H 'Content-Type: application/json' -d "{\"name\": \"live-e2e-$(date +%s)\"}" "$a/api/rooms" | jq -r .room.id)
  media=$(api -H 'Content-Type: application/json' -d '{"provider": "rtmp", "title": "e2e cam"}' \
    "$a/api/rooms/$room/media" | jq -r .media.id)
  key=$(api -X POST "$a/api/rooms/$room/media/$media/stream-key" | jq -r .publish_url)
  echo "room $room, media $media, publishing to ${key%/*}/live_..."

  say "publish a test pattern (H.264 + AAC, up to 2 min) with ffmpeg to A"
  ffmpeg -nostdin -v error -re -f lavfi -i testsrc=size=640x360:rate=30 -f lavfi -i sine=frequency=440 \
    -t 120 -c:v libx264 -pix_fmt yuv420p -preset veryfast -tune zerolatency -g 30 -c:a aac -f flv "$key" &
  pid=$!
  wait_until "the publish on A" 15 sh -c "curl -fsS -H 'Authorization: Bearer $token' \
    '$a/api/rooms/$room/media/$media/stream' | jq -e '.state == \"live\" and .video != null' >/dev/null"

  say "play from B ($b)"
  urls=$(api "$b/api/rooms/$room/media/$media/playback")
  flv=$b$(jq -r '.infos[] | select(.mode == "flv") | .url' <<<"$urls")
  hls=$b$(jq -r '.infos[] | select(.mode == "hls") | .url' <<<"$urls")
  local viewers=()
  for n in 1 2 3; do curl -s --max-time 3 -o "$work/viewer$n.flv" "$flv" & viewers+=($!); done
  sleep 1.5
  echo "B: $(info_of "$b" | jq -c '{state, source, node_id, publisher: .publisher.node_id, viewers}')"
  echo "A: $(info_of "$a" | jq -c '{state, source, node_id, viewers}')   <- one FLV viewer: B's relay"
  wait "${viewers[@]}" || true  # each ends at --max-time: a live stream has no end
  for n in 1 2 3; do
    printf 'viewer %s: %s bytes, starts with %s\n' "$n" "$(wc -c <"$work/viewer$n.flv")" \
      "$(head -c 3 "$work/viewer$n.flv")"
  done
  curl -fsS "$hls" >"$work/index.m3u8"
  echo "playlist from B:"; sed 's/sig=[^&]*/sig=.../' "$work/index.m3u8"
  segment=$(grep -v '^#' "$work/index.m3u8" | tail -1)
  curl -fsS -o "$work/segment.ts" "${hls%/*}/$segment"
  printf 'newest segment: %s bytes, first byte 0x%s (TS sync 0x47)\n' "$(wc -c <"$work/segment.ts")" \
    "$(head -c 1 "$work/segment.ts" | xxd -p)"

  say "idle cleanup: B releases its relay once its viewers are gone"
  wait_until "B's release" 60 sh -c "curl -fsS -H 'Authorization: Bearer $token' \
    '$b/api/rooms/$room/media/$media/stream' | jq -e '.state == \"offline\"' >/dev/null"
  echo "B: $(info_of "$b" | jq -c '{state}')   A: $(info_of "$a" | jq -c '{state, viewers}')"

  say "stop the publish; A releases the stream after [live] idle_s"
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  wait_until "A's release" 90 sh -c "curl -fsS -H 'Authorization: Bearer $token' \
    '$a/api/rooms/$room/media/$media/stream' | jq -e '.state == \"offline\"' >/dev/null"
  echo "A: $(info_of "$a" | jq -c '{state}')"
  say "done"
}

if [[ $# -ne 2 ]]; then
  echo "usage: SYNCTV_PASSWORD=... $0 NODE_A_URL NODE_B_URL" >&2
  exit 2
fi
live_any_node "$1" "$2"
