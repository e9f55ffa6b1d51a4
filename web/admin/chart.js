// A live line chart of each screen's drift (ms) over a time window, drawn on a <canvas> with no
// library: a y-axis in ms, symmetric around 0 and never narrower than ±25 ms, the ±1 frame band
// (±16.7 ms at 60 Hz) shaded, an x-axis in minutes back from now, one line per screen. A gap of
// more than GAP_MS between two samples breaks the line (the screen was offline or idle).
//
// Plain ES module, no dependencies.

export const FRAME_MS = 1000 / 60;
const GAP_MS = 4000;
const MIN_RANGE_MS = 25;
const STEPS = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000];

const LIGHT = ["#3461d1", "#e8590c", "#0f9d58", "#9c36b5", "#d6336c", "#1098ad", "#e8a200", "#5c7cfa"];
const DARK = ["#7aa2ff", "#ff922b", "#51cf66", "#da77f2", "#f783ac", "#3bc9db", "#ffd43b", "#91a7ff"];

/**
 * The line colour of the i-th series (follows the colour scheme).
 * @param {number} i
 */
export function seriesColor(i) {
  const dark = globalThis.matchMedia?.("(prefers-color-scheme: dark)").matches;
  const palette = dark ? DARK : LIGHT;
  return palette[i % palette.length];
}

/**
 * A symmetric y range and tick step covering `maxAbs` with at most 4 ticks each side, never
 * narrower than `minRange`.
 * @param {number} maxAbs
 * @param {number} [minRange]
 * @returns {{range: number, step: number}}
 */
export function yScale(maxAbs, minRange = MIN_RANGE_MS) {
  const need = Math.max(minRange, maxAbs * 1.15);
  for (const step of STEPS) {
    const range = Math.round(Math.ceil(need / step) * step * 1000) / 1000;
    if (range / step <= 4) return { range, step };
  }
  const step = STEPS[STEPS.length - 1];
  return { range: Math.ceil(need / step) * step, step };
}

/**
 * @typedef {object} Series
 * @property {string} name
 * @property {string} color
 * @property {Array<{t: number, drift: number}>} points oldest first, t in server ms
 */

export class DriftChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{windowMs: number}} options
   */
  constructor(canvas, options) {
    this.canvas = canvas;
    this.windowMs = options.windowMs;
    /** @type {Series[]} */
    this.series = [];
    this.now = Date.now();
    /** "frame": the y-axis shows at least ±25 ms (the ±1 frame band in view); "fit": zoomed to the data */
    this.scale = "frame";
    this._resize = new ResizeObserver(() => this.draw());
    this._resize.observe(canvas);
  }

  /**
   * @param {Series[]} series
   * @param {number} now server ms at the right edge
   */
  set(series, now) {
    this.series = series;
    this.now = now;
    this.draw();
  }

  destroy() {
    this._resize.disconnect();
  }

  draw() {
    const canvas = this.canvas;
    const rect = canvas.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) return;
    const ratio = globalThis.devicePixelRatio || 1;
    const width = Math.round(rect.width * ratio);
    const height = Math.round(rect.height * ratio);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, rect.width, rect.height);

    const style = getComputedStyle(canvas);
    const css = (/** @type {string} */ name) => style.getPropertyValue(name).trim();
    const muted = css("--muted") || "#6b7385";
    const line = css("--line") || "#e3e6ec";
    const band = css("--band") || "rgba(22,138,74,0.09)";
    const ok = css("--ok") || "#168a4a";
    const font = `11px ${style.fontFamily || "system-ui"}`;

    const start = this.now - this.windowMs;
    let maxAbs = 0;
    for (const s of this.series) for (const p of s.points) if (p.t >= start) maxAbs = Math.max(maxAbs, Math.abs(p.drift));
    const { range, step } = this.scale === "fit" ? yScale(maxAbs, 0.5) : yScale(maxAbs);
    const label = (/** @type {number} */ v) => {
      const text = Number.isInteger(step) ? String(Math.round(v)) : v.toFixed(step < 1 && step * 10 % 1 ? 2 : 1);
      return `${v > 0 ? "+" : v < 0 ? "−" : ""}${text.replace("-", "")} ms`;
    };

    const pad = { left: 62, right: 14, top: 12, bottom: 26 };
    const plotW = Math.max(10, rect.width - pad.left - pad.right);
    const plotH = Math.max(10, rect.height - pad.top - pad.bottom);
    const x = (/** @type {number} */ t) => pad.left + ((t - start) / this.windowMs) * plotW;
    const y = (/** @type {number} */ v) => pad.top + (1 - (Math.max(-range, Math.min(range, v)) + range) / (2 * range)) * plotH;

    // the ±1 frame band
    ctx.fillStyle = band;
    const bandTop = y(FRAME_MS);
    const bandBottom = y(-FRAME_MS);
    ctx.fillRect(pad.left, bandTop, plotW, bandBottom - bandTop);
    ctx.strokeStyle = ok;
    ctx.globalAlpha = 0.45;
    ctx.setLineDash([4, 4]);
    ctx.lineWidth = 1;
    for (const v of FRAME_MS < range ? [bandTop, bandBottom] : []) {
      ctx.beginPath();
      ctx.moveTo(pad.left, Math.round(v) + 0.5);
      ctx.lineTo(pad.left + plotW, Math.round(v) + 0.5);
      ctx.stroke();
    }
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;

    // y grid and labels
    ctx.font = font;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = -Math.round(range / step); i <= Math.round(range / step); i += 1) {
      const v = i * step;
      const yy = Math.round(y(v)) + 0.5;
      ctx.strokeStyle = line;
      ctx.lineWidth = v === 0 ? 1.5 : 1;
      ctx.beginPath();
      ctx.moveTo(pad.left, yy);
      ctx.lineTo(pad.left + plotW, yy);
      ctx.stroke();
      ctx.fillStyle = muted;
      ctx.fillText(label(Math.abs(v) < step / 2 ? 0 : v), pad.left - 8, yy);
    }
    // band labels at the right edge
    ctx.textAlign = "right";
    ctx.fillStyle = ok;
    ctx.globalAlpha = 0.8;
    if (FRAME_MS < range) ctx.fillText("±1 frame", pad.left + plotW - 4, bandTop + 8);
    ctx.globalAlpha = 1;

    // x labels: one per minute back from now
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    ctx.fillStyle = muted;
    const minutes = Math.round(this.windowMs / 60000);
    for (let m = minutes; m >= 0; m -= 1) {
      const xx = x(this.now - m * 60000);
      ctx.fillText(m === 0 ? "now" : `−${m} min`, Math.min(Math.max(xx, pad.left + 18), pad.left + plotW - 12),
        pad.top + plotH + 8);
      if (m > 0 && m < minutes) {
        ctx.strokeStyle = line;
        ctx.globalAlpha = 0.6;
        ctx.beginPath();
        ctx.moveTo(Math.round(xx) + 0.5, pad.top);
        ctx.lineTo(Math.round(xx) + 0.5, pad.top + plotH);
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
    }

    // the lines
    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.left, pad.top - 2, plotW, plotH + 4);
    ctx.clip();
    ctx.lineJoin = "round";
    ctx.lineCap = "round";
    for (const s of this.series) {
      ctx.strokeStyle = s.color;
      ctx.fillStyle = s.color;
      ctx.lineWidth = 1.75;
      ctx.beginPath();
      /** @type {Array<[number, number]>} */
      const lonely = [];
      let previous = /** @type {{t: number, drift: number} | null} */ (null);
      let runLength = 0;
      for (const p of s.points) {
        if (p.t < start - GAP_MS) continue;
        if (previous && p.t - previous.t <= GAP_MS) {
          ctx.lineTo(x(p.t), y(p.drift));
          runLength += 1;
        } else {
          if (previous && runLength === 0) lonely.push([x(previous.t), y(previous.drift)]);
          ctx.moveTo(x(p.t), y(p.drift));
          runLength = 0;
        }
        previous = p;
      }
      ctx.stroke();
      for (const [cx, cy] of lonely) this._dot(ctx, cx, cy);
      if (previous) this._dot(ctx, x(previous.t), y(previous.drift), 3);
    }
    ctx.restore();
  }

  /**
   * @param {CanvasRenderingContext2D} ctx
   * @param {number} cx
   * @param {number} cy
   * @param {number} [r]
   */
  _dot(ctx, cx, cy, r = 2) {
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, Math.PI * 2);
    ctx.fill();
  }
}
