// The writing pad: strokes from pointer events (mouse, touch, pen), recognition after every
// stroke with ONNX Runtime Web (WASM), the top candidates, undo and clear.
//
// Contract (for embedding and tests): window.kanjiLab = {
//   ready            Promise, resolves with the model info once the model is loaded; rejects
//                    with a readable Error (also shown on the page) when it cannot load
//   recognize(strokes, k = 10)  strokes: [[[x, y], ...], ...] in pad pixels; a Promise of
//                    [{char, prob}], best first
//   lastResult       the latest recognize() result (null before any, and after clear())
//   lastTiming       {total_ms, preprocess_ms, model_ms} of the latest recognition
//   clear(), undo()  empty the pad and the list / take back the last stroke
//   strokes          a copy of the strokes on the pad
//   preprocess(strokes)  the model input (Float32Array of size*size) the strokes give
//   model            name, variant, classes, bytes, runtime (after ready)
//   priorWeight      weight of the character-frequency prior (0 = the model alone; the site's
//                    `prior=` after ready): scores are log p(model) + weight x log p(text), as
//                    kanji_lab.predict's prior=
//   readyMs          when the model was ready, in ms since navigation started
//   loadMs           when each loading step ended (script, description, runtime, model,
//                    session, warmup), in ms since navigation started
// }
import { strokesInput } from "./normalize.js";

const TOP_K = 10;
const pad = document.getElementById("pad");
const list = document.getElementById("candidates");
const statusLine = document.getElementById("status");
const timing = document.getElementById("timing");
const copied = document.getElementById("copied");
const here = (path) => new URL(path, import.meta.url).href;

let strokes = [];
let current = null; // the stroke being drawn: {id, points}
let drawn = 0; // bumped on every change of the pad, so stale results are not shown
let engine = null; // {ort, session, meta}
let queue = Promise.resolve(); // one inference at a time

const api = {
  ready: null,
  lastResult: null,
  lastTiming: null,
  model: null,
  priorWeight: 0,
  readyMs: null,
  loadMs: null,
  get strokes() {
    return strokes.map((s) => s.map((p) => [p[0], p[1]]));
  },
  recognize,
  preprocess,
  clear,
  undo,
};
window.kanjiLab = api;

async function fetchChecked(path, what) {
  let response;
  try {
    response = await fetch(here(path));
  } catch (err) {
    throw new Error(`${what} (${path}) could not be fetched: ${err.message}`);
  }
  if (!response.ok) {
    throw new Error(`${what} (${path}) could not be fetched: HTTP ${response.status}`);
  }
  return response;
}

async function load() {
  const at = { script: performance.now() }; // milestones, ms since navigation started
  // the description, the runtime and (once its name is known) the model load side by side
  const described = fetchChecked("model/model.json", "The model description").then((r) => r.json());
  const runtime = import(here("ort/ort.wasm.bundle.min.mjs")).catch((err) => {
    throw new Error(`ONNX Runtime Web (ort/) could not be loaded: ${err.message}`);
  });
  runtime.catch(() => {}); // reported below, once
  const meta = await described;
  at.description = performance.now();
  const model = fetchChecked(meta.file, "The model").then((r) => r.arrayBuffer());
  model.catch(() => {});
  const ort = await runtime;
  at.runtime = performance.now();
  // the bundle carries its JavaScript glue; only the binary is fetched, from next to it
  ort.env.wasm.wasmPaths = { wasm: here("ort/ort-wasm-simd-threaded.wasm") };
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which static hosts lack
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error";
  const bytes = new Uint8Array(await model);
  at.model = performance.now();
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (err) {
    const reason = err && err.message ? err.message : String(err);
    throw new Error(`The model file ${meta.file} could not be loaded: ${reason}`);
  }
  at.session = performance.now();
  engine = { ort, session, meta };
  const size = meta.preprocessing.size;
  await infer(new Float32Array(size * size).fill(-1)); // warm-up: the first run allocates
  at.warmup = performance.now();
  api.loadMs = at;
  api.priorWeight = meta.prior ? meta.prior.weight : 0;
  api.model = {
    name: meta.name,
    arch: meta.arch,
    variant: meta.variant,
    classes: meta.classes,
    bytes: meta.bytes,
    runtime: meta.runtime,
  };
  api.readyMs = performance.now(); // since navigation started
  showModel(api.model);
  statusLine.textContent = "Ready: write a character on the pad.";
  return api.model;
}

function showModel(model) {
  const rows = [
    ["Model", `${model.name} (${model.arch}, ${model.variant})`],
    ["Classes", model.classes.toLocaleString("en")],
    ["Size", `${(model.bytes / 1e6).toFixed(2)} MB`],
    ["Runtime", `ONNX Runtime Web ${model.runtime.version} (WASM)`],
  ];
  document.getElementById("model-info").replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      return [dt, dd];
    }),
  );
}

function checkStrokes(value) {
  const ok =
    Array.isArray(value) &&
    value.every(
      (s) =>
        Array.isArray(s) &&
        s.every((p) => Array.isArray(p) && p.length >= 2 && p.every(Number.isFinite)),
    );
  if (!ok) throw new TypeError("strokes must be an array of strokes, each an array of [x, y]");
  return value.filter((s) => s.length > 0);
}

function preprocess(value) {
  if (!engine) throw new Error("the model is not loaded yet (await kanjiLab.ready)");
  return strokesInput(checkStrokes(value), engine.meta.preprocessing.normalize).input;
}

function infer(input) {
  const run = queue.then(async () => {
    const { ort, session, meta } = engine;
    const size = meta.preprocessing.size;
    const tensor = new ort.Tensor("float32", input, [1, 1, size, size]);
    const out = await session.run({ [session.inputNames[0]]: tensor });
    return out[session.outputNames[0]].data;
  });
  queue = run.catch(() => {});
  return run;
}

// log-softmax of the logits plus the weighted log prior (kanji_lab/prior.py's rescore)
function scores(logits) {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let total = 0;
  for (const v of logits) total += Math.exp(v - max);
  const logTotal = Math.log(total);
  const weight = Number(api.priorWeight) || 0;
  const prior = engine.meta.prior ? engine.meta.prior.log : null;
  return Float64Array.from(logits, (v, i) => v - max - logTotal + (weight && prior ? weight * prior[i] : 0));
}

function topK(logits, k) {
  const z = scores(logits);
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  const probs = Float64Array.from(z, (v) => Math.exp(v - max));
  const sum = probs.reduce((a, b) => a + b, 0);
  const labels = engine.meta.labels;
  return best(probs, Math.min(k, labels.length)).map((i) => ({
    char: labels[i],
    prob: probs[i] / sum,
  }));
}

// The indices of the k largest values, largest first, ties in index order (a stable sort's
// order): one pass keeping a short sorted list, where sorting every class took milliseconds.
function best(values, k) {
  const top = [];
  for (let i = 0; i < values.length; i++) {
    if (top.length === k && !(values[i] > values[top[k - 1]])) continue;
    let j = Math.min(top.length, k - 1);
    top[j] = i;
    for (; j > 0 && values[top[j - 1]] < values[i]; j--) [top[j], top[j - 1]] = [top[j - 1], i];
  }
  return top;
}

async function recognize(value, k = TOP_K) {
  await api.ready;
  const kept = checkStrokes(value);
  if (!kept.length) {
    api.lastResult = [];
    return [];
  }
  const t0 = performance.now();
  const input = preprocess(kept);
  const t1 = performance.now();
  const logits = await infer(input);
  const result = topK(logits, k);
  const t2 = performance.now();
  api.lastTiming = { total_ms: t2 - t0, preprocess_ms: t1 - t0, model_ms: t2 - t1 };
  api.lastResult = result;
  return result;
}

// ---- the pad -------------------------------------------------------------------------------

function padSize() {
  const box = { width: pad.clientWidth, height: pad.clientHeight };
  return { box, ratio: window.devicePixelRatio || 1 };
}

function redraw() {
  const { box, ratio } = padSize();
  const w = Math.round(box.width * ratio);
  const h = Math.round(box.height * ratio);
  if (pad.width !== w || pad.height !== h) [pad.width, pad.height] = [w, h];
  const ctx = pad.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, box.width, box.height);
  ctx.strokeStyle = "#e4e4e4";
  ctx.lineWidth = 1;
  ctx.setLineDash([4, 4]);
  ctx.beginPath();
  ctx.moveTo(box.width / 2, 0);
  ctx.lineTo(box.width / 2, box.height);
  ctx.moveTo(0, box.height / 2);
  ctx.lineTo(box.width, box.height / 2);
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.strokeStyle = "#111";
  ctx.fillStyle = "#111";
  ctx.lineWidth = Math.max(3, box.width / 40);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const s of current ? [...strokes, current.points] : strokes) {
    ctx.beginPath();
    ctx.moveTo(s[0][0], s[0][1]);
    for (const [x, y] of s.slice(1)) ctx.lineTo(x, y);
    if (s.length === 1) ctx.lineTo(s[0][0] + 0.01, s[0][1]);
    ctx.stroke();
  }
}

// pad pixels: CSS pixels from the top left corner of the pad's drawing area (inside the border)
function position(event) {
  const box = pad.getBoundingClientRect();
  return [event.clientX - box.left - pad.clientLeft, event.clientY - box.top - pad.clientTop];
}

pad.addEventListener("pointerdown", (event) => {
  if (current || (event.pointerType === "mouse" && event.button !== 0)) return;
  event.preventDefault();
  try {
    pad.setPointerCapture(event.pointerId); // moves outside the pad still belong to the stroke
  } catch {
    // a pointer the browser does not track (a synthetic event): no capture needed
  }
  current = { id: event.pointerId, points: [position(event)] };
  redraw();
});

pad.addEventListener("pointermove", (event) => {
  if (!current || event.pointerId !== current.id) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) current.points.push(position(e));
  redraw();
});

function endStroke(event) {
  if (!current || event.pointerId !== current.id) return;
  strokes.push(current.points);
  current = null;
  changed();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function changed() {
  drawn += 1;
  redraw();
  if (!strokes.length) {
    list.replaceChildren();
    list.dataset.strokes = "0";
    timing.textContent = "";
    return;
  }
  const mine = drawn;
  recognize(strokes)
    .then((result) => {
      if (mine !== drawn) return; // the pad changed meanwhile; a newer result follows
      show(result);
      const t = api.lastTiming;
      timing.textContent =
        `Recognised in ${t.total_ms.toFixed(1)} ms ` +
        `(preprocessing ${t.preprocess_ms.toFixed(1)} ms, model ${t.model_ms.toFixed(1)} ms)`;
    })
    .catch((err) => {
      if (engine) timing.textContent = `Recognition failed: ${err.message}`;
    });
}

function show(result) {
  list.dataset.strokes = String(strokes.length); // which drawing the list is for
  list.replaceChildren(
    ...result.map(({ char, prob }) => {
      const li = document.createElement("li");
      li.textContent = char;
      li.dataset.char = char;
      li.dataset.prob = `${(100 * prob).toFixed(1)}%`;
      li.tabIndex = 0;
      li.title = `${char}: ${(100 * prob).toFixed(1)}% (click to copy)`;
      return li;
    }),
  );
}

async function copy(char) {
  try {
    await navigator.clipboard.writeText(char);
  } catch {
    const area = document.createElement("textarea"); // no clipboard API off a secure origin
    area.value = char;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  copied.textContent = `Copied ${char}`;
}

list.addEventListener("click", (event) => {
  const li = event.target.closest("li");
  if (li) copy(li.dataset.char);
});
list.addEventListener("keydown", (event) => {
  const li = event.target.closest("li");
  if (li && (event.key === "Enter" || event.key === " ")) {
    event.preventDefault();
    copy(li.dataset.char);
  }
});

function clear() {
  strokes = [];
  current = null;
  api.lastResult = null;
  copied.textContent = "";
  changed();
}

function undo() {
  if (!strokes.length) return;
  strokes.pop();
  if (!strokes.length) api.lastResult = null;
  changed();
}

document.getElementById("clear").addEventListener("click", clear);
document.getElementById("undo").addEventListener("click", undo);
window.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z") {
    event.preventDefault();
    undo();
  } else if (event.key === "Escape") {
    clear();
  }
});
window.addEventListener("resize", redraw);

api.ready = load();
api.ready.catch((err) => {
  statusLine.textContent = `The recogniser could not start. ${err.message}`;
  statusLine.classList.add("error");
});
redraw();
