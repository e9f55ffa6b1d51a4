// Voice on the room page: WebRTC audio between the members who joined, a full mesh signalled
// over the room's `webrtc` messages (docs/rooms.md, "Voice").
//
// Signals (the `signal` of a `webrtc` message, at most 6 KiB of JSON):
//   {voice: "join"}                 sent to every connection in `presence` when joining
//   {voice: "offer", sdp}           a member in voice answers a join with an offer
//   {voice: "answer", sdp}
//   {voice: "leave"}
// ICE is not trickled: an offer or answer is sent once its candidates are gathered (or after
// GATHER_MS), one message each way per peer. Two members joining at once may offer to each other:
// the one with the greater connection id is "polite" and rolls its offer back (the perfect
// negotiation pattern). ICE servers come from the welcome (`webrtc.ice_servers`, the server's
// `[webrtc] ice_servers`); on a LAN none are needed.
//
// Who is speaking: every SPEAKING_MS each peer's `inbound-rtp` audioLevel (and the microphone's
// `media-source` level) from getStats.
//
// Plain ES module.

const GATHER_MS = 3000;
const SPEAKING_MS = 300;
const SPEAKING_LEVEL = 0.02;

/**
 * Events (CustomEvent): `change` {} whenever joined, muted, a peer or who speaks changes; `error` {message}.
 */
export class Voice extends EventTarget {
  constructor() {
    super();
    /** @type {import("./realtime.js").RealtimeClient | null} */
    this.client = null;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    this.myId = "";
    this.joined = false;
    this.muted = false;
    /** @type {MediaStream | null} */
    this.mic = null;
    /** @type {Map<string, {pc: RTCPeerConnection, audio: HTMLAudioElement, level: number, bytes: number}>} */
    this.peers = new Map();
    this.localLevel = 0;
    /** @type {string[]} connection ids in the room (from presence) */
    this.room = [];
    /** @type {ReturnType<typeof setInterval> | null} */
    this._levels = null;
  }

  /** @param {import("./realtime.js").RealtimeClient} client */
  attach(client) {
    this.client = client;
    client.addEventListener("welcome", (e) => {
      const welcome = /** @type {CustomEvent} */ (e).detail;
      this.myId = welcome.connection_id;
      this.iceServers = welcome.webrtc?.ice_servers ?? [];
      if (this.joined) {
        // a new connection id: the others know us no more; join again
        this._closePeers();
        this._sendAll({ voice: "join" });
      }
    });
    client.addEventListener("presence", (e) => {
      const online = /** @type {CustomEvent} */ (e).detail.online ?? [];
      this.room = online.flatMap((/** @type {any} */ u) => u.connection_ids ?? []);
      for (const id of [...this.peers.keys()]) if (!this.room.includes(id)) this._closePeer(id);
      this._changed();
    });
    client.addEventListener("webrtc", (e) => {
      const { from, signal } = /** @type {CustomEvent} */ (e).detail;
      this._onSignal(String(from), signal).catch((error) => this._error(`voice: ${error?.message ?? error}`));
    });
  }

  async join() {
    if (this.joined) return;
    if (!navigator.mediaDevices?.getUserMedia) {
      this._error("This browser cannot use a microphone here (voice needs HTTPS or localhost).");
      return;
    }
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true }, video: false });
    } catch (error) {
      const name = /** @type {Error} */ (error).name;
      this._error(name === "NotAllowedError"
        ? "The microphone was refused. Allow it in the browser's site settings, then join again."
        : name === "NotFoundError" ? "No microphone was found. Connect one and join again."
          : `The microphone could not be opened (${/** @type {Error} */ (error).message}).`);
      return;
    }
    this.joined = true;
    this.muted = false;
    this._sendAll({ voice: "join" });
    this._levels = setInterval(() => this._measure(), SPEAKING_MS);
    this._changed();
  }

  leave() {
    if (!this.joined) return;
    this._sendAll({ voice: "leave" });
    this._closePeers();
    for (const track of this.mic?.getTracks() ?? []) track.stop();
    this.mic = null;
    this.joined = false;
    if (this._levels !== null) clearInterval(this._levels);
    this._levels = null;
    this.localLevel = 0;
    this._changed();
  }

  /** @param {boolean} [muted] */
  toggleMute(muted = !this.muted) {
    this.muted = muted;
    for (const track of this.mic?.getAudioTracks() ?? []) track.enabled = !muted;
    this._changed();
  }

  /** @param {Record<string, unknown>} signal */
  _sendAll(signal) {
    for (const id of this.room) if (id !== this.myId) this._send(id, signal);
  }

  /**
   * @param {string} to
   * @param {Record<string, unknown>} signal
   */
  _send(to, signal) {
    this.client?.webrtc(to, signal).catch(() => {}); // gone meanwhile: presence will tell
  }

  /** @param {string} id */
  _peer(id) {
    let peer = this.peers.get(id);
    if (peer) return peer;
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const audio = new Audio();
    audio.autoplay = true;
    peer = { pc, audio, level: 0, bytes: 0 };
    this.peers.set(id, peer);
    for (const track of this.mic?.getTracks() ?? []) pc.addTrack(track, /** @type {MediaStream} */ (this.mic));
    pc.ontrack = (event) => {
      audio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
      audio.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this._closePeer(id);
      this._changed();
    };
    return peer;
  }

  /**
   * @param {string} from
   * @param {any} signal
   */
  async _onSignal(from, signal) {
    if (!signal || typeof signal !== "object" || typeof signal.voice !== "string") return;
    if (signal.voice === "leave") {
      this._closePeer(from);
      this._changed();
      return;
    }
    if (!this.joined) return;
    if (signal.voice === "join") {
      if (this.peers.has(from)) this._closePeer(from); // it joined again (a reconnect)
      const { pc } = this._peer(from);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      this._send(from, { voice: "offer", sdp: pc.localDescription?.sdp });
      return;
    }
    if (signal.voice === "offer" && typeof signal.sdp === "string") {
      const { pc } = this._peer(from);
      if (pc.signalingState === "have-local-offer") {
        if (this.myId < from) return; // impolite: ours wins, theirs is dropped
        await pc.setLocalDescription({ type: "rollback" });
      }
      await pc.setRemoteDescription({ type: "offer", sdp: signal.sdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await gathered(pc);
      this._send(from, { voice: "answer", sdp: pc.localDescription?.sdp });
      this._changed();
      return;
    }
    if (signal.voice === "answer" && typeof signal.sdp === "string") {
      const peer = this.peers.get(from);
      if (peer && peer.pc.signalingState === "have-local-offer") {
        await peer.pc.setRemoteDescription({ type: "answer", sdp: signal.sdp });
      }
      this._changed();
    }
  }

  /** @param {string} id */
  _closePeer(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.pc.close();
    peer.audio.srcObject = null;
  }

  _closePeers() {
    for (const id of [...this.peers.keys()]) this._closePeer(id);
  }

  async _measure() {
    let changed = false;
    for (const peer of this.peers.values()) {
      try {
        const stats = await peer.pc.getStats();
        stats.forEach((report) => {
          if (report.type === "inbound-rtp" && report.kind === "audio") {
            const level = Number(report.audioLevel ?? 0);
            if ((level > SPEAKING_LEVEL) !== (peer.level > SPEAKING_LEVEL)) changed = true;
            peer.level = level;
            peer.bytes = Number(report.bytesReceived ?? 0);
          }
          if (report.type === "media-source" && report.kind === "audio") {
            const level = this.muted ? 0 : Number(report.audioLevel ?? 0);
            if ((level > SPEAKING_LEVEL) !== (this.localLevel > SPEAKING_LEVEL)) changed = true;
            this.localLevel = level;
          }
        });
      } catch {
        // closed meanwhile
      }
    }
    if (changed) this._changed();
  }

  /** Connection ids speaking now (this page's own included). */
  speaking() {
    const ids = [...this.peers].filter(([, p]) => p.level > SPEAKING_LEVEL).map(([id]) => id);
    if (this.joined && !this.muted && this.localLevel > SPEAKING_LEVEL) ids.push(this.myId);
    return ids;
  }

  /** For the page's status(): joined, muted, and per peer its connection state and audio bytes received. */
  status() {
    /** @type {Record<string, {state: string, bytesReceived: number, level: number}>} */
    const peers = {};
    for (const [id, p] of this.peers) peers[id] = { state: p.pc.connectionState, bytesReceived: p.bytes, level: p.level };
    return { joined: this.joined, muted: this.muted, peers, speaking: this.speaking() };
  }

  _changed() {
    this.dispatchEvent(new CustomEvent("change", { detail: {} }));
  }

  /** @param {string} message */
  _error(message) {
    this.dispatchEvent(new CustomEvent("error", { detail: { message } }));
  }
}

/**
 * Resolves when `pc` has gathered its ICE candidates, or after GATHER_MS.
 * @param {RTCPeerConnection} pc
 */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, GATHER_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve(undefined);
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}
