// The live latent studio: the VAE's decoder running in the browser while a slider is dragged.
//
// A Streamlit Custom Component v2 (plain ES module, no build step, no network). It is mounted
// three times (see app/studio.py):
//   * with `data` = the model payload (bytes, layout in explorer/studio.py): the decoder's weights,
//     the atlas arrays and the verdict's thresholds. It never changes for a model, so the browser
//     receives it once; this mount only registers it in a page-wide registry and draws nothing. A
//     model of a family folder (beta/, ladder/) also gets one decoder-only payload per other member,
//     each mounted the same way: the studio decodes the current code with every member too;
//   * with `data` = the view (a small dict: model id, code, its revision, projection, labels): the
//     studio itself. Sliders decode on every `input` event and tell Python nothing until `change`
//     (the release), when one trigger value carries the code;
//   * with `data` = "signal-first-frame": says "ready" (a trigger value: the ids of the payloads the
//     page holds) once the studio has drawn its first digit, so the page can hold back the heavy
//     map until then, and leave those payloads out of later runs (the view's `held` lists them; a
//     page that lacks one says "need"). A payload that arrives later (another model opened) is
//     named the same way by the studio itself ("have"), once.
// A shared Web Worker computes the per-dimension strips, so the main decode never waits for them.
// `globalThis.__vaeStudio` holds the models, the counters the benchmarks read, and `decode()` and
// `locate()` for the parity tests (tests/test_browser*.py check them against explorer/studio.py).

const REGISTRY = (globalThis.__vaeStudio ??= {
  models: new Map(),        // id -> parsed model payload (decoder and atlas)
  decoders: new Map(),      // id -> {layers, activation, latent_dim}: every model's and member's decoder
  waiting: new Map(),       // id -> [callbacks waiting for that payload]
  studios: new WeakMap(),   // parentElement -> Studio
  // Counters the benchmarks read; times are performance.now() (ms since navigation).
  stats: { decodes: 0, decodeMs: [], stripUpdates: 0, stripMs: [], releases: 0, firstMount: null, modelReady: null, firstFrame: null,
           familyDecodes: 0, familyMs: [] },
  worker: null,
  held: null,               // {rev, code}: the code as last moved, kept if the studio is remounted
  released: null,           // {rev, z}: the code last released (follow.js: a follower mounted after it still follows it)
  reported: null,           // Set of "m:id" / "d:id": payloads the server was told the page holds (null until "ready")
  decode: null,             // (id, codes [[D numbers]]) -> pixel means [[784 numbers]]
  locate: null,             // (id, codes [[D numbers]]) -> [{distance, nearest, verdict, tsne}] (the readout's numbers)
});
const PIXELS = 784;
const MAX_TIMINGS = 5000;

// ---- payload --------------------------------------------------------------------------------

function parsePayload(bytes) {
  // Own, aligned copy: a Uint8Array from Streamlit may start at any byte offset of a larger buffer.
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const dv = new DataView(buf);
  const magic = String.fromCharCode(...new Uint8Array(buf, 0, 4));
  if (magic !== "VAES" || dv.getUint32(4, true) !== 2) throw new Error("not a version-2 studio payload");
  const n = dv.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 12, n)));
  const base = 12 + n;
  const arrays = {};
  for (const [name, spec] of Object.entries(header.arrays)) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    const View = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array }[spec.dtype];
    arrays[name] = new View(buf, base + spec.offset, count);
  }
  const layers = header.layers.map((l) => ({ w: arrays[l.weight], b: arrays[l.bias], n: l.in, m: l.out }));
  return { ...header, arrays, layers, nCodes: header.kind === "model" ? header.arrays.mu.shape[0] : 0 };
}

function registerModel(bytes) {
  const model = parsePayload(bytes);
  if (!REGISTRY.decoders.has(model.id)) {
    REGISTRY.decoders.set(model.id, { layers: model.layers, activation: model.activation, latent_dim: model.latent_dim });
    for (const s of liveStudios) s.onDecoder(model.id); // a family member's canvas can draw now
  }
  if (model.kind !== "model" || REGISTRY.models.has(model.id)) return;
  REGISTRY.models.set(model.id, model);
  REGISTRY.stats.modelReady ??= performance.now();
  sharedWorker()?.postMessage({ type: "model", id: model.id, activation: model.activation, latentDim: model.latent_dim,
                                layers: model.layers.map(({ w, b, n, m }) => ({ w: w.slice(), b: b.slice(), n, m })) });
  for (const callback of REGISTRY.waiting.get(model.id) ?? []) callback(model);
  REGISTRY.waiting.delete(model.id);
}

function whenModel(id, callback) {
  const model = REGISTRY.models.get(id);
  if (model) return callback(model);
  REGISTRY.waiting.set(id, [...(REGISTRY.waiting.get(id) ?? []), callback]);
}

// ---- the decoder (these functions also run inside the worker: they use nothing outside) -----

// y [B, m] = x [B, n] @ w.T + b, w row-major [m, n] (torch Linear). Four output units times four
// codes per pass: each weight and input load feeds four multiply-adds (1.2x a 2x4 block, 2.5x a
// plain loop in V8 for the 56-code strip batch). Sums run in doubles and are stored as float32.
function dense(x, B, w, b, n, m) {
  const y = new Float32Array(B * m);
  let j = 0;
  for (; j + 3 < m; j += 4) {
    const w0 = j * n, w1 = w0 + n, w2 = w1 + n, w3 = w2 + n;
    let r = 0;
    for (; r + 3 < B; r += 4) {
      let a00 = b[j], a01 = a00, a02 = a00, a03 = a00;
      let a10 = b[j + 1], a11 = a10, a12 = a10, a13 = a10;
      let a20 = b[j + 2], a21 = a20, a22 = a20, a23 = a20;
      let a30 = b[j + 3], a31 = a30, a32 = a30, a33 = a30;
      const x0 = r * n, x1 = x0 + n, x2 = x1 + n, x3 = x2 + n;
      for (let k = 0; k < n; k++) {
        const p0 = x[x0 + k], p1 = x[x1 + k], p2 = x[x2 + k], p3 = x[x3 + k];
        let u = w[w0 + k]; a00 += u * p0; a01 += u * p1; a02 += u * p2; a03 += u * p3;
        u = w[w1 + k]; a10 += u * p0; a11 += u * p1; a12 += u * p2; a13 += u * p3;
        u = w[w2 + k]; a20 += u * p0; a21 += u * p1; a22 += u * p2; a23 += u * p3;
        u = w[w3 + k]; a30 += u * p0; a31 += u * p1; a32 += u * p2; a33 += u * p3;
      }
      let o = r * m + j;
      y[o] = a00; y[o + 1] = a10; y[o + 2] = a20; y[o + 3] = a30; o += m;
      y[o] = a01; y[o + 1] = a11; y[o + 2] = a21; y[o + 3] = a31; o += m;
      y[o] = a02; y[o + 1] = a12; y[o + 2] = a22; y[o + 3] = a32; o += m;
      y[o] = a03; y[o + 1] = a13; y[o + 2] = a23; y[o + 3] = a33;
    }
    for (; r < B; r++) { // the last codes (B not a multiple of 4; a single decode is B = 1)
      const xo = r * n;
      let s0 = b[j], s1 = b[j + 1], s2 = b[j + 2], s3 = b[j + 3];
      for (let k = 0; k < n; k++) {
        const p = x[xo + k];
        s0 += w[w0 + k] * p; s1 += w[w1 + k] * p; s2 += w[w2 + k] * p; s3 += w[w3 + k] * p;
      }
      const o = r * m + j;
      y[o] = s0; y[o + 1] = s1; y[o + 2] = s2; y[o + 3] = s3;
    }
  }
  for (; j < m; j++) { // the last units (m not a multiple of 4)
    const wo = j * n;
    for (let r = 0; r < B; r++) {
      let s = b[j];
      const xo = r * n;
      for (let k = 0; k < n; k++) s += w[wo + k] * x[xo + k];
      y[r * m + j] = s;
    }
  }
  return y;
}

// In place, as explorer/numpy_vae.py's ACTIVATIONS.
function activate(h, activation) {
  if (activation === "relu") { for (let i = 0; i < h.length; i++) if (h[i] < 0) h[i] = 0; }
  else if (activation === "elu") { for (let i = 0; i < h.length; i++) if (h[i] < 0) h[i] = Math.expm1(h[i]); }
  else if (activation === "silu") { for (let i = 0; i < h.length; i++) h[i] = h[i] / (1 + Math.exp(-h[i])); }
  else if (activation === "tanh") { for (let i = 0; i < h.length; i++) h[i] = Math.tanh(h[i]); }
  else throw new Error("unknown activation " + activation);
  return h;
}

// codes z [B, D] -> pixel means sigmoid(logits) [B, 784]
function decodePixels(layers, activation, z, B) {
  let h = z;
  for (let i = 0; i < layers.length; i++) {
    const { w, b, n, m } = layers[i];
    h = dense(h, B, w, b, n, m);
    if (i < layers.length - 1) activate(h, activation);
  }
  for (let i = 0; i < h.length; i++) h[i] = 1 / (1 + Math.exp(-h[i]));
  return h;
}

// Strips: for each dimension d in dims, the code with z[d] replaced by each of `values`; [dims*V, 784].
function decodeStrips(layers, activation, z, dims, values) {
  const D = z.length, V = values.length, B = dims.length * V;
  const codes = new Float32Array(B * D);
  dims.forEach((d, s) => values.forEach((v, k) => {
    const o = (s * V + k) * D;
    codes.set(z, o);
    codes[o + d] = v;
  }));
  return decodePixels(layers, activation, codes, B);
}

function workerMain() {
  const models = new Map();
  self.onmessage = (e) => {
    const msg = e.data;
    if (msg.type === "model") { models.set(msg.id, msg); return; }
    if (msg.type === "strips") {
      const m = models.get(msg.id);
      if (!m) return;
      const t0 = performance.now();
      const pixels = decodeStrips(m.layers, m.activation, msg.z, msg.dims, msg.values);
      self.postMessage({ type: "strips", seq: msg.seq, id: msg.id, dims: msg.dims, ms: performance.now() - t0, pixels }, [pixels.buffer]);
    }
  };
}

function sharedWorker() {
  if (REGISTRY.worker !== null) return REGISTRY.worker || null;
  try {
    const source = [dense, activate, decodePixels, decodeStrips, workerMain].map(String).join("\n") + "\nworkerMain();";
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    REGISTRY.worker = new Worker(url);
    REGISTRY.worker.onmessage = (e) => { for (const s of liveStudios) s.onStrips(e.data); };
  } catch (err) {
    REGISTRY.worker = false; // no workers here (policy, old browser): strips are computed on the main thread
  }
  return REGISTRY.worker || null;
}
const liveStudios = new Set();

REGISTRY.decode = (id, codes) => {
  const model = REGISTRY.models.get(id);
  if (!model) throw new Error("no model " + id);
  const D = model.latent_dim, z = new Float32Array(codes.length * D);
  codes.forEach((c, i) => z.set(c, i * D));
  const px = decodePixels(model.layers, model.activation, z, codes.length);
  return codes.map((_, i) => Array.from(px.subarray(i * PIXELS, (i + 1) * PIXELS)));
};

// ---- where a code stands: nearest test codes, verdict, map place (explorer/studio.py's twin) --

// The K nearest test codes of `code` [D] (one pass over the atlas): squared distances and rows, nearest first.
function nearestCodes(model, code, K) {
  const D = model.latent_dim, mu = model.arrays.mu, N = model.nCodes;
  const bestD = new Float64Array(K).fill(Infinity), bestI = new Int32Array(K).fill(-1);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let d = 0; d < D; d++) { const t = mu[i * D + d] - code[d]; s += t * t; }
    if (s < bestD[K - 1]) { // insert into the sorted top-K
      let k = K - 1;
      while (k > 0 && bestD[k - 1] > s) { bestD[k] = bestD[k - 1]; bestI[k] = bestI[k - 1]; k--; }
      bestD[k] = s; bestI[k] = i;
    }
  }
  return { bestD, bestI };
}

// The verdict compares with the thresholds Python computed (explorer.studio.thresholds): no rule here.
function verdictOf(model, distance) {
  const t = model.thresholds;
  return distance <= t.typical_max ? "typical" : distance <= t.sparse_max ? "sparse" : "hole";
}

// Distance, nearest row, verdict and the t-SNE place: the k-NN inverse-distance mean, or null for a
// hole (explorer.studio.tsne_place: k-NN placement always lands among digits, so a hole gets none).
function whereIs(model, code) {
  const K = model.tsne_neighbours, { bestD, bestI } = nearestCodes(model, code, K);
  const distance = Math.sqrt(bestD[0]), verdict = verdictOf(model, distance);
  let tsne = null;
  if (verdict !== "hole") {
    const coords = model.arrays.tsne;
    let wx = 0, wy = 0, ws = 0;
    for (let k = 0; k < K; k++) {
      const w = 1 / Math.max(Math.sqrt(bestD[k]), 1e-6);
      wx += w * coords[2 * bestI[k]]; wy += w * coords[2 * bestI[k] + 1]; ws += w;
    }
    tsne = [wx / ws, wy / ws];
  }
  return { distance, nearest: bestI[0], verdict, tsne };
}

function pcaOf(model, code) {
  const D = model.latent_dim, mean = model.arrays.pca_mean, comp = model.arrays.pca_components;
  return [0, 1].map((c) => { let s = 0; for (let d = 0; d < D; d++) s += (code[d] - mean[d]) * comp[c * D + d]; return s; });
}

REGISTRY.locate = (id, codes) => {
  const model = REGISTRY.models.get(id);
  if (!model) throw new Error("no model " + id);
  return codes.map((c) => whereIs(model, Float32Array.from(c)));
};

// ---- drawing helpers ------------------------------------------------------------------------

const DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function putGrey(ctx, pixels, offset, x0, width = 28, height = 28) {
  const img = ctx.createImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = Math.round(pixels[offset + i] * 255);
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, x0, 0);
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

function signed(v) { return (v >= 0 ? "+" : "−") + Math.abs(v).toFixed(2); }

function digitPhrase(label) { return (label === 8 ? "an " : "a ") + label; } // "a 3", "an 8"

const VERDICT_WORDS = {
  typical: ["Among the digits", "test digits encode this close to each other"],
  sparse: ["Between digits", "few test digits encode near here"],
  hole: ["A hole", "no test digit encodes near here, so the decoder never learnt to draw it"],
};
const VERDICT_COLOURS = { typical: "#2ca02c", sparse: "#ff9f1c", hole: "#d62728" };

// ---- the studio -----------------------------------------------------------------------------

class Studio {
  constructor(root, setTriggerValue) {
    this.root = root;
    this.setTriggerValue = setTriggerValue;
    this.view = null;
    this.model = null;
    this.code = null;          // Float32Array [D]: what the sliders show, also while dragging
    this.rev = null;           // the server revision the code was last taken from
    this.stripSeq = 0;
    this.stripBusy = false;
    this.stripDirty = false;
    this.mapCache = new Map(); // projection -> {canvas, toPixel}
    this.members = [];         // [{id, name, ctx, canvas}]: the family's canvases
    this.familyFrame = 0;      // requestAnimationFrame id of a pending family redraw
    this.box = el("div", { class: "studio" }, el("p", { class: "loading", text: "Loading the model into the browser…" }));
    root.appendChild(this.box);
    liveStudios.add(this);
  }

  update(view, setTriggerValue) {
    this.setTriggerValue = setTriggerValue;
    const modelChanged = !this.view || view.model !== this.view.model;
    const layoutChanged = modelChanged || JSON.stringify([view.order, view.kl, view.active, view.family]) !==
      JSON.stringify([this.view.order, this.view.kl, this.view.active, this.view.family]);
    const projectionChanged = !this.view || view.projection !== this.view.projection;
    const bandChanged = !this.view || JSON.stringify(view.band) !== JSON.stringify(this.view.band);
    this.view = view;
    if (modelChanged) this.model = null;
    // Payloads the server left out because this page said it holds them (app/studio.py payloads_ui):
    // if one is missing after all, ask once; the server then sends every payload again.
    const missing = (view.held ?? []).filter((id) => !(id === view.model ? REGISTRY.models : REGISTRY.decoders).has(id));
    if (missing.length && !this.askedForPayloads) {
      this.askedForPayloads = true;
      setTriggerValue("need", missing);
    }
    whenModel(view.model, (model) => {
      if (this.view !== view) return; // a newer view arrived first
      const fresh = this.model !== model;
      this.model = model;
      if (fresh || layoutChanged) this.build();
      else if (bandChanged) this.drawBands();
      if (fresh || this.rev !== view.rev || this.code.length !== model.latent_dim) {
        // The view carries the code of its revision; within a revision the user's own moves win
        // (the server has them already: releases keep the revision).
        const held = REGISTRY.held;
        // (The code is the app's, not the model's: it survives a switch to a model of the same size.)
        const own = held && held.rev === view.rev && held.code.length === model.latent_dim;
        this.code = own ? Float32Array.from(held.code) : Float32Array.from(view.code);
        this.rev = view.rev;
        this.box.dataset.rev = String(view.rev);
        this.hold();
        this.syncInputs();
      }
      if (fresh || projectionChanged || layoutChanged) this.refresh(true);
      else this.refresh(false);
      this.reportHeld(view);
    });
  }

  // After "ready", payloads this view decodes with that the server still sends on every full run
  // (a model opened later, its family's decoders): once all of them have arrived, name what the page
  // holds (one trigger value; each payload is named once).
  reportHeld(view) {
    const reported = REGISTRY.reported;
    if (!reported) return; // the first-frame signal names them first
    const held = new Set(view.held ?? []);
    const sent = [["m", view.model, REGISTRY.models],
                  ...(view.family ?? []).filter((f) => !f.open).map((f) => ["d", f.id, REGISTRY.decoders])]
      .filter(([, id]) => !held.has(id));
    if (sent.some(([, id, registry]) => !registry.has(id))) return; // more are on their way: report them together
    if (sent.every(([kind, id]) => reported.has(`${kind}:${id}`))) return;
    this.setTriggerValue("have", reportHeldIds());
  }

  build() {
    const { view, model } = this;
    const D = model.latent_dim;
    this.inputs = new Array(D);
    this.values = new Array(D);
    this.strips = new Array(D);
    this.bands = new Array(D);
    const rows = el("div", { class: "rows" });
    let inactiveShown = false;
    for (const d of view.order) {
      if (!view.active[d] && !inactiveShown) {
        rows.append(el("div", { class: "group", text: "inactive: KL ≈ 0, the decoder ignores these" }));
        inactiveShown = true;
      }
      const input = el("input", { type: "range", min: -view.limit, max: view.limit, step: view.step, value: 0,
                                  "aria-label": `z${d}`, "data-dim": d });
      input.addEventListener("input", () => this.onInput(d, input));
      input.addEventListener("change", () => this.onRelease());
      const band = el("div", { class: "band", "data-dim": d, hidden: "" }, el("span", { class: "mu" }));
      const strip = el("canvas", { width: 28 * view.strip.length, height: 28, class: "strip", "aria-label": `z${d} strip`,
                                   title: `decodes of z${d} = ${view.strip.join(", ")}, the other dimensions as now` });
      const value = el("span", { class: "value" });
      rows.append(el("div", { class: "row" + (view.active[d] ? "" : " inactive") },
        el("span", { class: "name", text: `z${d}` }),
        el("span", { class: "kl", text: `KL ${view.kl[d].toFixed(2)}`, title: "mean KL of this dimension over the test set (nats)" }),
        el("div", { class: "track" }, band, input), value, strip));
      this.inputs[d] = input;
      this.values[d] = value;
      this.strips[d] = strip.getContext("2d");
      this.bands[d] = band;
    }
    this.canvas = el("canvas", { width: 28, height: 28, class: "digit", "aria-label": "decoded digit" });
    this.ctx = this.canvas.getContext("2d");
    this.map = el("canvas", { width: 240, height: 240, class: "minimap", "aria-label": "live latent map" });
    this.mapCtx = this.map.getContext("2d");
    this.verdictWord = el("strong", { class: "word" });
    this.verdictWhy = el("span", { class: "why" });
    this.verdictDetail = el("span", { class: "detail" });
    this.readout = el("div", { class: "plausibility", "aria-live": "polite" }, this.verdictWord, this.verdictWhy, this.verdictDetail);
    this.mapCaption = el("p", { class: "caption" });
    this.bandNote = el("p", { class: "bandnote", hidden: "" });
    const head = el("div", { class: "head" },
      el("div", { class: "digitbox" }, this.canvas, el("p", { class: "caption", text: "decoded pixel means, live" })),
      el("div", { class: "side" }, this.readout, this.bandNote));
    head.append(this.buildFamily());
    const mapbox = el("div", { class: "mapbox" }, this.map, this.mapCaption);
    const strips = el("div", { class: "striphead" }, el("span", { text: `strips: each dimension at ${view.strip[0]} … +${view.strip[view.strip.length - 1]}, the others held` }));
    this.box.replaceChildren(head, mapbox, el("div", { class: "right" }, strips, rows));
    // On a phone the head sticks below Streamlit's header, which lies over the scrolling main block.
    const header = document.querySelector("[data-testid='stHeader']");
    if (header && header.offsetHeight > 0) this.box.style.setProperty("--studio-sticky-top", `${header.offsetHeight}px`);
    this.mapCache.clear();
    this.stripCode = null; // new canvases: every strip is drawn afresh
    this.drawBands();
  }

  // One small canvas per member of the open model's family: the same code through each decoder.
  buildFamily() {
    const family = this.view.family || [];
    this.members = [];
    if (family.length === 0) return el("div", { class: "family", hidden: "" });
    const folder = family[0].name.includes("/") ? family[0].name.split("/")[0] + "/" : "";
    const grid = el("div", { class: "members" });
    for (const f of family) {
      const canvas = el("canvas", { width: 28, height: 28, class: "member", "aria-label": `decoded by ${f.name}` });
      grid.append(el("figure", { class: f.open ? "open" : "" }, canvas, el("figcaption", { text: f.label + (f.open ? " (open)" : "") })));
      this.members.push({ id: f.id, name: f.name, canvas, ctx: canvas.getContext("2d") });
    }
    return el("div", { class: "family" }, el("p", { class: "caption", text: `the same code, decoded by every model of ${folder}` }), grid);
  }

  onDecoder(id) {
    if (this.members.some((m) => m.id === id) && this.code) this.drawFamily();
    if (this.model && this.view) this.reportHeld(this.view); // the last of a family's decoders may come after the model
  }

  // `own`: the open model's decode of this code, if already made (its member canvas reuses it).
  drawFamily(own = null) {
    if (this.members.length === 0) return;
    const s = REGISTRY.stats, t0 = performance.now();
    let drawn = 0;
    for (const m of this.members) {
      const dec = REGISTRY.decoders.get(m.id);
      if (!dec) continue; // its payload has not arrived yet: onDecoder draws it then
      const px = own && m.id === this.model.id ? own : decodePixels(dec.layers, dec.activation, this.code, 1);
      putGrey(m.ctx, px, 0, 0);
      m.canvas.dataset.frames = String(Number(m.canvas.dataset.frames || 0) + 1);
      drawn++;
    }
    if (drawn) {
      s.familyDecodes += drawn;
      if (s.familyMs.length < MAX_TIMINGS) s.familyMs.push(performance.now() - t0);
    }
  }

  // The digit's posterior N(mu, sigma²) as a band mu ± sigma on each slider's track.
  drawBands() {
    const band = this.view.band, lim = this.view.limit;
    this.bandNote.hidden = !band;
    if (band) {
      this.bandNote.textContent = `Bands on the sliders: mu ± sigma of ${band.what}, where the encoder put it and how sure it was.`;
    }
    this.bands.forEach((node, d) => {
      if (!band) { node.hidden = true; return; }
      const mu = band.mu[d], sd = band.sigma[d];
      const f = (v) => (Math.min(Math.max(v, -lim), lim) + lim) / (2 * lim);
      node.hidden = false;
      node.style.setProperty("--lo", f(mu - sd).toFixed(4));
      node.style.setProperty("--hi", f(mu + sd).toFixed(4));
      node.style.setProperty("--mu", f(mu).toFixed(4));
      node.dataset.mu = String(mu);
      node.dataset.sigma = String(sd);
      node.title = `${band.what}: mu ${signed(mu)}, sigma ${sd.toFixed(2)}`;
    });
  }

  syncInputs() {
    for (let d = 0; d < this.code.length; d++) {
      this.inputs[d].value = String(this.code[d]);
      this.values[d].textContent = signed(this.code[d]);
    }
  }

  hold() { REGISTRY.held = { rev: this.rev, code: Array.from(this.code) }; }

  onInput(d, input) {
    this.code[d] = parseFloat(input.value);
    this.hold();
    this.values[d].textContent = signed(this.code[d]);
    this.refresh(false);
  }

  onRelease() {
    REGISTRY.stats.releases++;
    const z = Array.from(this.code, (v) => Math.round(v * 100) / 100);
    this.setTriggerValue("release", { z });
    // Other parts of the page that show the code (the keep panel's follower, follow.js) rerun with it;
    // one that is not mounted yet reads `released` when it is.
    REGISTRY.released = { rev: this.rev, z };
    globalThis.dispatchEvent(new CustomEvent("vae-studio-release", { detail: { z } }));
  }

  // Decode and draw the digit, every family member's digit, the locator and the readout now; ask for the strips.
  refresh(redrawMap) {
    const { model } = this;
    const t0 = performance.now();
    const px = decodePixels(model.layers, model.activation, this.code, 1);
    const ms = performance.now() - t0;
    putGrey(this.ctx, px, 0, 0);
    const s = REGISTRY.stats;
    s.decodes++;
    if (s.decodeMs.length < MAX_TIMINGS) s.decodeMs.push(ms);
    if (s.firstFrame === null) s.firstFrame = performance.now();
    this.canvas.dataset.frames = String(s.decodes);
    this.drawFamily(px);
    this.locate(redrawMap);
    this.requestStrips();
  }

  // A strip of dimension d holds every other dimension at the current code and varies d, so it
  // depends on the code except z[d]: when only z[c] moved since the last strips, all strips but
  // c's are redone (dragging one slider skips its own strip's decodes).
  stripDims() {
    const D = this.model.latent_dim, last = this.stripCode;
    const all = [...Array(D).keys()];
    if (!last || last.length !== D) return all;
    const moved = all.filter((d) => last[d] !== this.code[d]);
    return moved.length === 1 ? all.filter((d) => d !== moved[0]) : moved.length === 0 ? [] : all;
  }

  requestStrips() {
    this.stripDirty = true;
    if (this.stripBusy) return; // the newest code is sent when the running request returns
    const worker = sharedWorker();
    const { model, view } = this;
    const dims = this.stripDims();
    this.stripDirty = false;
    if (dims.length === 0) return;
    this.stripCode = this.code.slice();
    if (!worker) {
      const t0 = performance.now();
      this.drawStrips(dims, decodeStrips(model.layers, model.activation, this.code, dims, view.strip), performance.now() - t0);
      return;
    }
    this.stripBusy = true;
    worker.postMessage({ type: "strips", id: model.id, seq: ++this.stripSeq, z: this.code.slice(), dims, values: view.strip });
  }

  onStrips(msg) {
    if (msg.type !== "strips" || msg.seq !== this.stripSeq) return; // another studio's answer
    this.stripBusy = false;
    if (!this.model || msg.id !== this.model.id) { // the model changed while the worker ran
      if (this.model) this.requestStrips();
      return;
    }
    this.drawStrips(msg.dims, msg.pixels, msg.ms);
    if (this.stripDirty) this.requestStrips();
  }

  drawStrips(dims, pixels, ms) {
    const V = this.view.strip.length;
    dims.forEach((d, s) => {
      for (let k = 0; k < V; k++) putGrey(this.strips[d], pixels, (s * V + k) * PIXELS, 28 * k);
    });
    const s = REGISTRY.stats;
    s.stripUpdates++;
    if (s.stripMs.length < MAX_TIMINGS) s.stripMs.push(ms);
    this.box.dataset.stripUpdates = String(s.stripUpdates);
  }

  // The verdict beside the digit, and the marker on the mini-map.
  locate(redrawMap) {
    const { model, view, code } = this;
    const where = whereIs(model, code);
    const pca = view.projection === "PCA";
    const xy = pca ? pcaOf(model, code) : where.tsne; // null: a hole has no place on t-SNE
    this.drawMap(xy, where, redrawMap);
    this.mapCaption.textContent = pca
      ? "you are here, on the PCA map (exact). Shade: how many test digits project there; hatched: none."
      : xy ? `you are here, on the t-SNE map (placed by its ${model.tsne_neighbours} nearest test codes)`
        : "off the data: a hole has no place on the t-SNE map (it only places codes among test digits); the dashed line points at the nearest test digit";
    const { distance, nearest, verdict } = where, sp = model.spacing;
    const [word, why] = VERDICT_WORDS[verdict];
    this.readout.dataset.verdict = verdict;
    this.readout.dataset.distance = distance.toFixed(4);
    this.verdictWord.textContent = word;
    this.verdictWhy.textContent = why + ".";
    this.verdictDetail.textContent = `Nearest test digit: ${digitPhrase(model.arrays.labels[nearest])} ` +
      `(test #${model.arrays.test_index[nearest]}), ${distance.toFixed(2)} away; test digits sit ${sp.median.toFixed(2)} ` +
      `from their nearest neighbour (95 % within ${model.thresholds.typical_max.toFixed(2)}; a hole beyond ${model.thresholds.sparse_max.toFixed(2)}).`;
  }

  drawMap(xy, where, redraw) {
    const key = this.view.projection;
    let cached = this.mapCache.get(key);
    if (!cached) {
      cached = key === "PCA" ? this.renderMap(this.model.arrays.pca, true) : this.renderMap(this.model.arrays.tsne, false);
      this.mapCache.set(key, cached);
    }
    const ctx = this.mapCtx, W = this.map.width, H = this.map.height;
    ctx.clearRect(0, 0, W, H);
    ctx.drawImage(cached.canvas, 0, 0);
    const colour = VERDICT_COLOURS[where.verdict];
    const ring = (x, y, r, c, dashed) => {
      ctx.setLineDash(dashed ? [3, 3] : []);
      ctx.lineWidth = 4; ctx.strokeStyle = "#fff";
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.stroke();
      ctx.lineWidth = 2; ctx.strokeStyle = c;
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI); ctx.stroke();
      ctx.setLineDash([]);
    };
    if (xy === null) { // off the data (t-SNE only): a cross in the lane above the map, tied to the nearest digit
      const coords = this.model.arrays.tsne, n = where.nearest;
      const [nx, ny] = cached.toPixel(coords[2 * n], coords[2 * n + 1]);
      const x = Math.min(Math.max(nx, 10), W - 10), y = 11;
      ctx.fillStyle = "rgba(255,255,255,0.55)"; ctx.fillRect(0, cached.top, W, H - cached.top); // the data, dimmed
      ctx.setLineDash([4, 3]); ctx.lineWidth = 1.5; ctx.strokeStyle = colour;
      ctx.beginPath(); ctx.moveTo(x, y + 6); ctx.lineTo(nx, ny); ctx.stroke(); ctx.setLineDash([]);
      ring(nx, ny, 4, "#000", false);
      ctx.lineWidth = 3; ctx.strokeStyle = colour;
      ctx.beginPath(); ctx.moveTo(x - 6, y - 6); ctx.lineTo(x + 6, y + 6); ctx.moveTo(x + 6, y - 6); ctx.lineTo(x - 6, y + 6); ctx.stroke();
      ctx.fillStyle = colour; ctx.font = "bold 11px sans-serif"; ctx.textBaseline = "middle";
      const label = "off the data";
      const right = x < W / 2;
      ctx.textAlign = right ? "left" : "right";
      ctx.fillText(label, right ? x + 11 : x - 11, y);
      this.map.dataset.offData = "true";
      this.map.dataset.x = x.toFixed(1);
      this.map.dataset.y = y.toFixed(1);
      return;
    }
    const [px, py] = cached.toPixel(xy[0], xy[1]);
    const x = Math.min(Math.max(px, 4), W - 4), y = Math.min(Math.max(py, cached.top + 4), H - 4);
    ring(x, y, 7, where.verdict === "typical" ? "#000" : colour, where.verdict !== "typical");
    this.map.dataset.offData = "false";
    this.map.dataset.x = x.toFixed(1);
    this.map.dataset.y = y.toFixed(1);
  }

  // The map's digits (and, for PCA, how densely they project) on an offscreen canvas, once per projection.
  // t-SNE keeps a lane at the top for a code off the data.
  renderMap(coords, density) {
    const W = this.map.width, H = this.map.height, N = this.model.nCodes, labels = this.model.arrays.labels;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < N; i++) {
      x0 = Math.min(x0, coords[2 * i]); x1 = Math.max(x1, coords[2 * i]);
      y0 = Math.min(y0, coords[2 * i + 1]); y1 = Math.max(y1, coords[2 * i + 1]);
    }
    const pad = 8, top = density ? pad : 24;
    const scale = Math.min((W - 2 * pad) / (x1 - x0 || 1), (H - top - pad) / (y1 - y0 || 1));
    const toPixel = (x, y) => [pad + (x - x0) * scale, H - pad - (y - y0) * scale];
    const canvas = document.createElement("canvas");
    canvas.width = W; canvas.height = H;
    const ctx = canvas.getContext("2d");
    if (density) this.renderDensity(ctx, coords, toPixel);
    else {
      ctx.fillStyle = "rgba(127,127,127,0.08)"; ctx.fillRect(0, 0, W, top - 4);
    }
    ctx.globalAlpha = 0.55;
    for (let i = 0; i < N; i++) {
      const [x, y] = toPixel(coords[2 * i], coords[2 * i + 1]);
      ctx.fillStyle = DIGIT_COLOURS[labels[i]];
      ctx.fillRect(x - 1, y - 1, 2, 2);
    }
    return { canvas, toPixel, top: density ? 0 : top - 4 };
  }

  // PCA is exact, so its 2-D density is the encoded digits' own: a grey shade per 12-px cell by how
  // many test digits project there, hatching where none does.
  renderDensity(ctx, coords, toPixel) {
    const W = this.map.width, H = this.map.height, C = 12, cols = Math.ceil(W / C), rows = Math.ceil(H / C);
    const count = new Uint32Array(cols * rows);
    for (let i = 0; i < this.model.nCodes; i++) {
      const [x, y] = toPixel(coords[2 * i], coords[2 * i + 1]);
      const cx = Math.min(cols - 1, Math.max(0, Math.floor(x / C))), cy = Math.min(rows - 1, Math.max(0, Math.floor(y / C)));
      count[cy * cols + cx]++;
    }
    const max = Math.max(...count);
    for (let cy = 0; cy < rows; cy++) for (let cx = 0; cx < cols; cx++) {
      const n = count[cy * cols + cx];
      if (n > 0) {
        ctx.fillStyle = `rgba(90,90,110,${(0.06 + 0.3 * Math.sqrt(n / max)).toFixed(3)})`;
        ctx.fillRect(cx * C, cy * C, C, C);
      } else {
        ctx.strokeStyle = "rgba(127,127,127,0.28)"; ctx.lineWidth = 1;
        ctx.beginPath(); ctx.moveTo(cx * C, cy * C + C); ctx.lineTo(cx * C + C, cy * C); ctx.stroke();
      }
    }
    this.map.dataset.emptyCells = String(count.filter((n) => n === 0).length);
  }
}

const signalled = new WeakSet(); // parentElements that have said "ready"

function reportHeldIds() { // what the page's registry holds, as the server's PagePayloads reads it; marked as reported
  const have = { models: [...REGISTRY.models.keys()], decoders: [...REGISTRY.decoders.keys()] };
  REGISTRY.reported ??= new Set();
  have.models.forEach((id) => REGISTRY.reported.add(`m:${id}`));
  have.decoders.forEach((id) => REGISTRY.reported.add(`d:${id}`));
  return have;
}

function signalFirstFrame(parentElement, setTriggerValue) {
  if (signalled.has(parentElement)) return;
  signalled.add(parentElement);
  const check = () => {
    if (REGISTRY.stats.firstFrame === null) return requestAnimationFrame(check);
    // One more frame: the digit is on screen before the page's next run starts drawing the map.
    // It names the payloads the page holds: the server need not send (nor hash) them again.
    requestAnimationFrame(() => setTriggerValue("ready", reportHeldIds()));
  };
  check();
}

export default function mount(component) {
  const { data, parentElement, setTriggerValue } = component;
  REGISTRY.stats.firstMount ??= performance.now();
  if (data instanceof Uint8Array) { // the model payload: register it, draw nothing
    try { registerModel(data); } catch (err) { console.error("studio: bad model payload", err); }
    return;
  }
  if (data === "signal-first-frame") return signalFirstFrame(parentElement, setTriggerValue);
  if (!data || typeof data !== "object") return;
  let studio = REGISTRY.studios.get(parentElement);
  if (!studio) {
    studio = new Studio(parentElement, setTriggerValue);
    REGISTRY.studios.set(parentElement, studio);
  }
  studio.update(data, setTriggerValue);
}
