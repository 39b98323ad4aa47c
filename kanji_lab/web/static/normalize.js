// Strokes -> the model's input, step for step as kanji_lab/data/normalize.py defines it.
//
//   strokesInput(strokes, settings) = normalizeInk(drawStrokes(strokes, settings), settings)
//
// `settings` is the "normalize" block of the model's preprocessing metadata (pen, margin, ...);
// nothing here hard-codes a value of it. drawStrokes reproduces the pixels Pillow's ImageDraw
// sets for `line(width=...)` (a filled quad per segment, scanline fill) and `ellipse(fill=...)`
// (the integer midpoint ellipse), so the ink image, and with it the 64x64 input, is the one
// Python computes (tests/test_web.py measures the difference). No DOM: it runs in a page, a
// worker or Node.

const f32 = Math.fround;

// Python's round(): half to even.
function roundHalfEven(v) {
  const r = Math.round(v); // (half up: exactly half below an odd r goes to the even r - 1)
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// C's roundf (half away from zero) and Pillow's ROUND_UP / ROUND_DOWN (towards/away from zero
// symmetric); `single` evaluates the +-0.5 in float32, as C does for a float argument.
const roundAway = (v) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
function roundUp(v, single) {
  const h = (a) => (single ? f32(a + 0.5) : a + 0.5);
  return v >= 0 ? Math.floor(h(v)) : -Math.floor(h(Math.abs(v)));
}
function roundDown(v, single) {
  const h = (a) => (single ? f32(a - 0.5) : a - 0.5);
  return v >= 0 ? Math.ceil(h(v)) : -Math.ceil(h(Math.abs(v)));
}

class Ink {
  constructor(width, height) {
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height);
  }

  point(x, y) {
    if (x >= 0 && x < this.width && y >= 0 && y < this.height) this.data[y * this.width + x] = 255;
  }

  hline(x0, y, x1) {
    if (y < 0 || y >= this.height || x0 >= this.width || x1 < 0) return;
    const a = Math.max(x0, 0);
    const b = Math.min(x1, this.width - 1);
    if (a <= b) this.data.fill(255, y * this.width + a, y * this.width + b + 1);
  }
}

function edge(x0, y0, x1, y1) {
  return {
    x0,
    y0,
    xmin: Math.min(x0, x1),
    xmax: Math.max(x0, x1),
    ymin: Math.min(y0, y1),
    ymax: Math.max(y0, y1),
    dx: y0 === y1 ? 0 : f32((x1 - x0) / (y1 - y0)),
  };
}

// x of an edge on scanline y, in float32 like the C code
const edgeX = (e, y) => f32(f32((y - e.y0) * e.dx) + e.x0);

// Scanline fill of a polygon given as edges (Pillow's polygon rule, corner fix included).
function fillPolygon(ink, edges) {
  let ymin = ink.height - 1;
  let ymax = 0;
  const table = [];
  for (const e of edges) {
    ymin = Math.min(ymin, e.ymin);
    ymax = Math.max(ymax, e.ymax);
    if (e.ymin === e.ymax) ink.hline(e.xmin, e.ymin, e.xmax);
    else table.push(e);
  }
  ymin = Math.max(ymin, 0);
  ymax = Math.min(ymax, ink.height);
  for (let y = ymin; y <= ymax; y++) {
    const xs = [];
    for (let i = 0; i < table.length; i++) {
      const cur = table[i];
      if (y < cur.ymin || y > cur.ymax) continue;
      xs.push(edgeX(cur, y));
      if (y === cur.ymax && y < ymax) {
        xs.push(xs[xs.length - 1]);
      } else if ((y === cur.ymin || y === cur.ymax) && cur.dx !== 0) {
        cornerFix(xs, table, i, y);
      }
    }
    ascending(xs);
    for (let i = 1; i < xs.length; i += 2) {
      ink.hline(roundUp(xs[i - 1], true), y, roundDown(xs[i], true));
    }
  }
}

// Sort a scanline's few crossings in place (insertion sort: faster than Array.sort for a handful).
function ascending(xs) {
  for (let i = 1; i < xs.length; i++) {
    const v = xs[i];
    let j = i - 1;
    for (; j >= 0 && xs[j] > v; j--) xs[j + 1] = xs[j];
    xs[j + 1] = v;
  }
}

// Where two slanted edges meet at a vertex on this scanline, move the crossing next to the
// neighbouring row's crossings so that the corner is drawn without a gap or a spike.
function cornerFix(xs, table, i, y) {
  const cur = table[i];
  const last = xs.length - 1;
  for (let k = 0; k < i; k++) {
    const other = table[k];
    if ((y !== other.ymin && y !== other.ymax) || other.dx === 0) continue;
    if (roundAway(xs[last]) !== roundAway(edgeX(other, y))) continue;
    const next = y === cur.ymax ? y - 1 : y + 1;
    const near = edgeX(cur, next);
    if (next < other.ymin || next > other.ymax) continue;
    const nearOther = edgeX(other, next);
    if (xs[last] > f32(near + 1) && xs[last] > f32(nearOther + 1)) {
      xs[last] = roundAway(Math.max(near, nearOther)) + 1;
    } else if (xs[last] < f32(near - 1) && xs[last] < f32(nearOther - 1)) {
      xs[last] = roundAway(Math.min(near, nearOther)) - 1;
    }
    return;
  }
}

// A segment `width` pixels wide between integer points: a quad, filled; no caps.
function wideLine(ink, x0, y0, x1, y1, width) {
  const dx = x1 - x0;
  const dy = y1 - y0;
  if (dx === 0 && dy === 0) {
    ink.point(x0, y0);
    return;
  }
  const length = Math.hypot(dx, dy);
  const half = (width - 1) / 2;
  const big = roundUp(half, false) / length;
  const small = roundDown(half, false) / length;
  const dxmin = roundDown(small * dy, false);
  const dxmax = roundDown(big * dy, false);
  const dymin = roundDown(small * dx, false);
  const dymax = roundDown(big * dx, false);
  const v = [
    [x0 - dxmin, y0 + dymax],
    [x1 - dxmin, y1 + dymax],
    [x1 + dxmax, y1 - dymin],
    [x0 + dxmax, y0 - dymin],
  ];
  fillPolygon(
    ink,
    v.map((p, k) => edge(p[0], p[1], v[(k + 1) % 4][0], v[(k + 1) % 4][1])),
  );
}

// The filled ellipse in the integer box x0..x1, y0..y1 (inclusive). On a grid of step 2 (so
// that the centre is a grid point), a midpoint walk along the top-right quarter of
// x^2/a^2 + y^2/b^2 = 1 gives each row's outermost x; every row is filled between -x and x.
function fillEllipse(ink, x0, y0, x1, y1) {
  const a = x1 - x0;
  const b = y1 - y0;
  if (a < 0 || b < 0) return;
  const a2 = a * a;
  const b2 = b * b;
  const miss = (x, y) => Math.abs(a2 * y * y + b2 * x * x - a2 * b2);
  const reach = new Map(); // row (grid units) -> outermost x on that row
  let x = a;
  let y = b % 2;
  for (;;) {
    if (!reach.has(y)) reach.set(y, x);
    if (x === a % 2 && y === b) break;
    let nx = x;
    let ny = y + 2;
    let best = miss(nx, ny);
    if (x > 1) {
      const diagonal = miss(x - 2, y + 2);
      if (best > diagonal) [nx, ny, best] = [x - 2, y + 2, diagonal];
      if (best > miss(x - 2, y)) [nx, ny] = [x - 2, y];
    }
    x = nx;
    y = ny;
  }
  for (const [row, r] of reach) {
    for (const yy of row > 0 ? [row, -row] : [row]) {
      ink.hline(x0 + (a - r) / 2, y0 + (yy + b) / 2, x0 + (a + r) / 2);
    }
  }
}

// Stroke data (each stroke an array of [x, y], y down, any unit) -> ink-bright drawing with the
// canonical pen: the strokes' box scaled so its longer side is `stroke_canvas` pixels, the pen
// `pen` of that side, round caps and joins (a disc at every point), a padding of the pen + 2.
export function drawStrokes(strokes, settings) {
  const kept = strokes.filter((s) => s.length > 0);
  if (!kept.length) throw new Error("no strokes to draw");
  let [lx, ly, hx, hy] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const s of kept) {
    for (const [px, py] of s) {
      lx = Math.min(lx, px);
      ly = Math.min(ly, py);
      hx = Math.max(hx, px);
      hy = Math.max(hy, py);
    }
  }
  const longer = Math.max(hx - lx, hy - ly);
  const reference = Number(settings.stroke_canvas);
  const scale = longer > 0 ? reference / longer : 1.0;
  const pen = Number(settings.pen) * reference;
  const pad = Math.ceil(pen) + 2;
  const ink = new Ink(
    Math.ceil((hx - lx) * scale) + 2 * pad,
    Math.ceil((hy - ly) * scale) + 2 * pad,
  );
  const width = roundHalfEven(pen);
  const radius = pen / 2;
  for (const s of kept) {
    const xy = s.map(([px, py]) => [(px - lx) * scale + pad, (py - ly) * scale + pad]);
    for (let i = 1; i < xy.length; i++) {
      const [ax, ay] = xy[i - 1];
      const [bx, by] = xy[i];
      wideLine(ink, Math.trunc(ax), Math.trunc(ay), Math.trunc(bx), Math.trunc(by), width);
    }
    for (const [px, py] of xy) {
      const t = Math.trunc;
      fillEllipse(ink, t(px - radius), t(py - radius), t(px + radius), t(py + radius));
    }
  }
  return ink;
}

// Step 0: the paper's slow changes (light, shadow) taken out. Cells of `flatten / 3` of the
// longer side keep their lowest level; a 3x3 minimum then maximum over the cells (a grey opening)
// gives each cell's paper, which every pixel of the cell loses (at least 0). Integer levels only,
// so it equals Python's _flatten exactly; `flatten` 0 or absent (older models): the image itself.
export function flatten(img, settings) {
  const fraction = Number(settings.flatten || 0);
  if (!(fraction > 0)) return img;
  const { width: w, height: h, data } = img;
  const cell = Math.max(1, Math.trunc((Math.max(h, w) * fraction) / 3));
  const rows = Math.ceil(h / cell);
  const cols = Math.ceil(w / cell);
  if (paperInEveryCell(img, cell, rows, cols)) return img; // clean paper: nothing to take out
  const lowest = new Uint8Array(rows * cols);
  const line = new Uint8Array(w); // whole rows at a time, then the cells' spans of the row
  for (let r = 0; r < rows; r++) {
    line.fill(255);
    for (let y = r * cell; y < Math.min(r * cell + cell, h); y++) {
      for (let x = 0, i = y * w; x < w; x++, i++) if (data[i] < line[x]) line[x] = data[i];
    }
    for (let c = 0; c < cols; c++) {
      let low = 255;
      for (let x = c * cell; x < Math.min(c * cell + cell, w); x++) low = Math.min(low, line[x]);
      lowest[r * cols + c] = low;
    }
  }
  const paper = cells3x3(cells3x3(lowest, rows, cols, Math.min), rows, cols, Math.max);
  // cells over half-way from the lowest level to the brightest are ink wider than the window
  let [low, high] = [255, 0];
  for (const v of lowest) low = Math.min(low, v);
  for (const v of data) high = Math.max(high, v);
  for (let k = 0; k < paper.length; k++) if (2 * (paper[k] - low) > high - low) paper[k] = low;
  if (paper.every((v) => v === 0)) return img; // clean paper (a drawing): nothing to take out
  const out = new Uint8Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) line.fill(paper[r * cols + c], c * cell, c * cell + cell);
    for (let y = r * cell; y < Math.min(r * cell + cell, h); y++) {
      for (let x = 0, i = y * w; x < w; x++, i++) out[i] = data[i] - Math.min(data[i], line[x]);
    }
  }
  return { width: w, height: h, data: out };
}

// Whether every cell holds a pixel at level 0: then every cell's paper is 0 and step 0 changes
// nothing (a drawing, a clean scan), found without visiting most pixels.
function paperInEveryCell({ width: w, height: h, data }, cell, rows, cols) {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let found = false;
      for (let y = r * cell; y < Math.min(r * cell + cell, h) && !found; y++) {
        for (let x = c * cell, i = y * w + x; x < Math.min(c * cell + cell, w); x++, i++) {
          if (data[i] === 0) {
            found = true;
            break;
          }
        }
      }
      if (!found) return false;
    }
  }
  return true;
}

// The minimum or maximum (`pick`) of each cell and its neighbours that exist.
function cells3x3(cells, rows, cols, pick) {
  const out = new Uint8Array(cells.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let v = cells[r * cols + c];
      for (let a = Math.max(r - 1, 0); a < Math.min(r + 2, rows); a++) {
        for (let b = Math.max(c - 1, 0); b < Math.min(c + 2, cols); b++) {
          v = pick(v, cells[a * cols + b]);
        }
      }
      out[r * cols + c] = v;
    }
  }
  return out;
}

// The k-th brightest grey level of a histogram, the brightest level, the border's median.
function levels(img) {
  const { width: w, height: h, data } = img;
  // four interleaved counts: a run of one level (paper) does not wait on its own last count
  const counts = new Int32Array(1024);
  const n4 = data.length - (data.length % 4);
  for (let i = 0; i < n4; i += 4) {
    counts[data[i] << 2]++;
    counts[(data[i + 1] << 2) | 1]++;
    counts[(data[i + 2] << 2) | 2]++;
    counts[(data[i + 3] << 2) | 3]++;
  }
  for (let i = n4; i < data.length; i++) counts[data[i] << 2]++;
  const hist = new Int32Array(256);
  for (let v = 0; v < 256; v++) {
    hist[v] = counts[v << 2] + counts[(v << 2) | 1] + counts[(v << 2) | 2] + counts[(v << 2) | 3];
  }
  const border = new Float64Array(256);
  let count = 0;
  const add = (v) => {
    border[v]++;
    count++;
  };
  for (let x = 0; x < w; x++) add(data[x]);
  for (let x = 0; x < w; x++) add(data[(h - 1) * w + x]);
  for (let y = 1; y < h - 1; y++) add(data[y * w]);
  for (let y = 1; y < h - 1; y++) add(data[y * w + w - 1]);
  let paper = 0;
  for (let v = 0, cum = 0; v < 256; v++) {
    cum += border[v];
    if (cum * 2 >= count) {
      paper = v;
      break;
    }
  }
  return { hist, paper };
}

// Paper (the border median) to 0, the ink level to 255: {ink: float ink in 0..255, mask: 1 where
// the ink is above the threshold x 255}.
export function stretchContrast(img, settings) {
  const { hist, paper } = levels(img);
  const k = Math.max(1, roundHalfEven(img.data.length * Number(settings.peak_fraction)));
  let top = 0;
  for (let v = 255, cum = 0; v >= 0; v--) {
    cum += hist[v];
    if (cum >= k) {
      top = v;
      break;
    }
  }
  let brightest = 0;
  for (let v = 255; v >= 0; v--) {
    if (hist[v] > 0) {
      brightest = v;
      break;
    }
  }
  const floor = paper + Number(settings.peak_floor) * (brightest - paper);
  const peak = Math.max(top, floor);
  const gain = peak > paper ? f32(255.0 / Math.max(peak - paper, 1e-6)) : 0;
  // the stretched value depends on the grey level alone: one table of 256
  const table = new Float32Array(256);
  const above = new Uint8Array(256);
  const limit = 255.0 * Number(settings.threshold);
  for (let v = 0; v < 256; v++) {
    table[v] = Math.min(Math.max(f32(f32(v - paper) * gain), 0), 255);
    above[v] = table[v] > limit ? 1 : 0;
  }
  const { data } = img;
  const ink = new Float32Array(data.length);
  const mask = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    ink[i] = table[data[i]];
    mask[i] = above[data[i]];
  }
  return { ink, mask };
}

// Per row and per column of the mask: its ink pixels and its first and last ink pixel (-1: none),
// in one pass along the rows.
function lineCounts(mask, width, height) {
  const rows = { count: new Float64Array(height), first: new Int32Array(height).fill(-1),
    last: new Int32Array(height).fill(-1) };
  const cols = { count: new Float64Array(width), first: new Int32Array(width).fill(-1),
    last: new Int32Array(width).fill(-1) };
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      if (!mask[i]) continue;
      rows.count[y]++;
      if (rows.first[y] < 0) rows.first[y] = x;
      rows.last[y] = x;
      cols.count[x]++;
      if (cols.first[x] < 0) cols.first[x] = y;
      cols.last[x] = y;
    }
  }
  return [rows, cols];
}

// Rows (columns) in the outer band whose ink starts and ends within `clutter_line` of the edges
// and covers `clutter_run` of their length, within a band of rows at least half ink no thicker
// than `clutter_line` of the side: a ruled line or the sheet's grid. `lines`: lineCounts of the
// `height` rows (columns), each `width` long.
function lineRows({ count: dense, first, last }, width, height, band, settings) {
  const full = new Uint8Array(height);
  const edge = Math.trunc(band * height);
  const reach = Number(settings.clutter_line) * width;
  for (let y = 0; y < height; y++) {
    if (y >= edge && y < height - edge) continue;
    full[y] = first[y] >= 0 && first[y] <= reach && last[y] >= width - 1 - reach &&
      dense[y] >= Number(settings.clutter_run) * width ? 1 : 0;
  }
  // the line with its edges (rows at least half ink) is thin: not a character's stroke
  const longest = Number(settings.clutter_line) * height;
  for (let y = 0; y < height; ) {
    if (!(dense[y] >= 0.5 * width)) {
      y++;
      continue;
    }
    let stop = y;
    while (stop < height && dense[stop] >= 0.5 * width) stop++;
    if (stop - y > longest) full.fill(0, y, stop);
    y = stop;
  }
  return full;
}

// 8-connected pieces of the mask, found from its runs (the stretches of ink within a row; runs of
// neighbouring rows that touch join), as data/clutter.py does: per piece its runs
// (runs[first .. first + count], each [row, first column, last column]), ink mass and box
// [top, bottom, left, right], numbered in raster order; and each ink pixel's piece (`label`).
// `bounds`: per row, the first and last column that can hold ink (lineCounts).
function pieces(mask, ink, width, height, bounds) {
  const rows = [];
  const firsts = [];
  const lasts = [];
  const parent = [];
  const root = (a) => {
    while (parent[a] !== a) a = parent[a] = parent[parent[a]];
    return a;
  };
  let above = 0; // the previous row's runs start here
  for (let y = 0; y < height; y++) {
    const start = rows.length;
    const end = bounds.last[y] + 1; // (no ink: -1 + 1, nothing to visit)
    for (let x = Math.max(bounds.first[y], 0), i = y * width + x; x < end; x++, i++) {
      if (!mask[i]) continue;
      const first = x;
      while (x + 1 < end && mask[i + 1]) {
        x++;
        i++;
      }
      const run = rows.length;
      rows.push(y);
      firsts.push(first);
      lasts.push(x);
      parent.push(run);
      for (let k = above; k < start; k++) {
        if (firsts[k] <= x + 1 && first <= lasts[k] + 1) {
          const [a, b] = [root(k), root(run)];
          if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
        }
      }
    }
    above = start;
  }
  // pieces numbered by their first run: raster order
  const id = new Int32Array(rows.length);
  const found = [];
  for (let r = 0; r < rows.length; r++) {
    const top = root(r);
    if (top === r) {
      id[r] = found.length;
      found.push({ first: 0, count: 0, mass: 0, box: [height, -1, width, -1] });
    } else {
      id[r] = id[top];
    }
  }
  const label = new Int32Array(mask.length).fill(-1);
  const byPiece = new Int32Array(rows.length);
  let offset = 0;
  for (let r = 0; r < rows.length; r++) found[id[r]].count++;
  for (const p of found) {
    p.first = offset;
    offset += p.count;
    p.count = 0;
  }
  for (let r = 0; r < rows.length; r++) {
    const p = found[id[r]];
    byPiece[p.first + p.count++] = r;
    const y = rows[r];
    const b = p.box;
    if (y < b[0]) b[0] = y;
    if (y > b[1]) b[1] = y;
    if (firsts[r] < b[2]) b[2] = firsts[r];
    if (lasts[r] > b[3]) b[3] = lasts[r];
    for (let i = y * width + firsts[r]; i <= y * width + lasts[r]; i++) {
      p.mass += ink[i];
      label[i] = id[r];
    }
  }
  const runs = Array.from(byPiece, (r) => [rows[r], firsts[r], lasts[r]]);
  return { found, label, runs };
}

// The side (1 left, 2 right, 3 top, 4 bottom; 0 none) along which a piece lies as a bar: wholly
// within that side's band and at least `ratio` times longer along the side than across it.
function barEdge([top, bottom, left, right], width, height, bandH, bandW, ratio) {
  if (ratio <= 0) return 0;
  const tall = bottom - top + 1;
  const wide = right - left + 1;
  if (tall >= ratio * wide) {
    if (right + 1 <= bandW) return 1;
    if (left >= width - bandW) return 2;
  }
  if (wide >= ratio * tall) {
    if (bottom + 1 <= bandH) return 3;
    if (top >= height - bandH) return 4;
  }
  return 0;
}

// Bars along an edge become suspects when the rest of the kept ink, bars along the opposite
// edge included, leaves the band of the opposite side free (a character inside its cell).
function dropBars(kept, edges, found, width, height, bandH, bandW) {
  const far = [0, 1, 2, 3, 4].map(() => [Infinity, -1, Infinity, -1]);
  found.forEach((p, i) => {
    if (!kept[i]) return;
    const box = far[edges[i]];
    box[0] = Math.min(box[0], p.box[0]);
    box[1] = Math.max(box[1], p.box[1]);
    box[2] = Math.min(box[2], p.box[2]);
    box[3] = Math.max(box[3], p.box[3]);
  });
  if (far[0][1] < 0) return;
  const free = [
    width - 1 - Math.max(far[0][3], far[2][3]) >= bandW,
    Math.min(far[0][2], far[1][2]) >= bandW,
    height - 1 - Math.max(far[0][1], far[4][1]) >= bandH,
    Math.min(far[0][0], far[3][0]) >= bandH,
  ];
  found.forEach((p, i) => {
    if (kept[i] && edges[i] > 0 && free[edges[i] - 1]) kept[i] = false;
  });
}

// Which pieces are clutter: suspects (tiny, or small and wholly in one side's band, or a bar
// along an edge: dropBars) that stay further from the character's box than `clutter_gap` of its
// longer side (twice that for pieces between `clutter_mass` and twice it that the image's edge
// cuts).
function dropped(found, runs, width, height, settings) {
  const total = found.reduce((sum, p) => sum + p.mass, 0);
  const bandH = Number(settings.clutter_band) * height;
  const bandW = Number(settings.clutter_band) * width;
  const mass = Number(settings.clutter_mass);
  const bar = Number(settings.clutter_bar || 0); // models before version 4: no bars
  const reach = [];
  const edges = [];
  const kept = found.map((p) => {
    const [top, bottom, left, right] = p.box;
    const share = p.mass / total;
    const oneSide =
      bottom + 1 <= bandH || top >= height - bandH || right + 1 <= bandW || left >= width - bandW;
    const small = share < mass;
    const touches = top === 0 || left === 0 || bottom === height - 1 || right === width - 1;
    const large = !small && share < 2 * mass && touches;
    reach.push((oneSide && large ? 2.0 : 1.0) * Number(settings.clutter_gap));
    edges.push(share < 0.5 ? barEdge(p.box, width, height, bandH, bandW, bar) : 0);
    return !((oneSide && (small || large)) || share < Number(settings.clutter_speck));
  });
  if (bar > 0) dropBars(kept, edges, found, width, height, bandH, bandW);
  if (!kept.some((k) => k)) return found.map(() => false);
  for (;;) {
    const body = [Infinity, -1, Infinity, -1];
    found.forEach((p, i) => {
      if (!kept[i]) return;
      body[0] = Math.min(body[0], p.box[0]);
      body[1] = Math.max(body[1], p.box[1]);
      body[2] = Math.min(body[2], p.box[2]);
      body[3] = Math.max(body[3], p.box[3]);
    });
    const side = Math.max(body[1] - body[0], body[3] - body[2]) + 1;
    const joins = found.map((p, i) => {
      if (kept[i]) return false;
      // the nearest pixel to the body's box (Chebyshev distance; 0 inside): per run, its row's
      // distance and that of its column nearest to the box
      let nearest = Infinity;
      for (let k = p.first; k < p.first + p.count; k++) {
        const [y, first, last] = runs[k];
        nearest = Math.min(nearest, Math.max(body[0] - y, y - body[1], body[2] - last, first - body[3], 0));
      }
      return nearest - 1 <= reach[i] * side;
    });
    if (!joins.some((j) => j)) return kept.map((k) => !k);
    joins.forEach((j, i) => {
      if (j) kept[i] = true;
    });
  }
}

// Ruled and grid lines, neighbours' fragments and specks -> paper (kanji_lab/data/clutter.py);
// `ink` itself when there are none. `mask`: stretchContrast's, changed here.
export function removeClutter({ ink, mask }, [across, down], width, height, settings) {
  const band = Number(settings.clutter_band || 0);
  if (!(band > 0)) return ink;
  const rows = lineRows(across, width, height, band, settings);
  const cols = lineRows(down, height, width, band, settings);
  let out = ink; // copied before its first change
  if (rows.includes(1) || cols.includes(1)) {
    out = Float32Array.from(ink);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (rows[y] || cols[x]) {
          out[y * width + x] = 0;
          mask[y * width + x] = 0;
        }
      }
    }
  }
  const { found, label, runs } = pieces(mask, out, width, height, across);
  if (found.length < 2) return out;
  const drop = dropped(found, runs, width, height, settings);
  if (!drop.includes(true)) return out;
  if (out === ink) out = Float32Array.from(ink);
  const gone = (i) => label[i] >= 0 && drop[label[i]];
  // the dropped runs with the pixel ring around them: a run grown by one pixel on every side
  const erase = new Uint8Array(ink.length);
  found.forEach((p, id) => {
    if (!drop[id]) return;
    for (let k = p.first; k < p.first + p.count; k++) {
      const [y, first, last] = runs[k];
      for (let yy = Math.max(y - 1, 0); yy <= Math.min(y + 1, height - 1); yy++) {
        erase.fill(1, yy * width + Math.max(first - 1, 0), yy * width + Math.min(last + 1, width - 1) + 1);
      }
    }
  });
  for (let i = 0; i < ink.length; i++) {
    if (erase[i] && !(mask[i] && !gone(i))) out[i] = 0;
  }
  return out;
}

// Per row of an axis profile: the position (0 = the first cell's leading edge) before which
// `fraction` of the mass lies, the mass spread evenly within each cell; 0 when empty.
function quantile(profile, fraction) {
  let total = 0;
  for (const v of profile) total += v;
  if (total <= 0) return 0;
  const target = total * fraction;
  let before = 0;
  for (let i = 0; i < profile.length; i++) {
    if (before + profile[i] > target) {
      const inside = (target - before) / Math.max(profile[i], 1e-9);
      return i + Math.min(Math.max(inside, 0), 1);
    }
    before += profile[i];
  }
  return profile.length - 1;
}

// [start, end]: `sds` standard deviations either side of the profile's mass centre (cell i's
// mass at i + 0.5), summed in the order Python's _spread sums; the whole profile when empty.
function spread(profile, sds) {
  let total = 0;
  let first = 0;
  for (let i = 0; i < profile.length; i++) {
    total += profile[i];
    first += profile[i] * (i + 0.5);
  }
  if (!(total > 0)) return [0, profile.length];
  const mean = first / total;
  let second = 0;
  for (let i = 0; i < profile.length; i++) {
    const d = i + 0.5 - mean;
    second += profile[i] * d * d;
  }
  const half = sds * Math.sqrt(second / total);
  return [mean - half, mean + half];
}

// [rows, cols, cappedRows, cappedCols]: the mass of the ink above `limit` per row and per column,
// and the same with each pixel weighing at most `cap` (Python's _profiles). `bounds`: per row, the
// first and last column that can hold such ink (lineCounts).
function profiles(ink, width, height, limit, cap, bounds) {
  const rows = new Float64Array(height);
  const cols = new Float64Array(width);
  const cappedRows = new Float64Array(height);
  const cappedCols = new Float64Array(width);
  for (let y = 0; y < height; y++) {
    for (let x = Math.max(bounds.first[y], 0), i = y * width + x; x <= bounds.last[y]; x++, i++) {
      const v = ink[i];
      if (v > limit) {
        const low = Math.min(v, cap);
        rows[y] += v;
        cols[x] += v;
        cappedRows[y] += low;
        cappedCols[x] += low;
      }
    }
  }
  return [rows, cols, cappedRows, cappedCols];
}

// [top, bottom, left, right] (pixel edges): all but `trim` (each side) of the mass of the ink
// above `threshold` x 255, per axis, sub-pixel; from version 5 (`frame_sd`) narrowed to the mass
// centre +- `frame_sd` standard deviations, each pixel weighing at most `frame_cap` x 255 there.
export function inkBox(ink, width, height, settings, bounds) {
  const limit = 255.0 * Number(settings.threshold);
  const cap = 255.0 * Number(settings.frame_cap ?? 1);
  const [rows, cols, cappedRows, cappedCols] = profiles(ink, width, height, limit, cap, bounds);
  const trim = Number(settings.trim);
  const reversed = (a) => Float64Array.from(a).reverse();
  const box = [
    quantile(rows, trim),
    height - quantile(reversed(rows), trim),
    quantile(cols, trim),
    width - quantile(reversed(cols), trim),
  ];
  const sds = Number(settings.frame_sd || 0); // models before version 5: the quantile box
  if (sds > 0) {
    for (const [axis, profile] of [[0, cappedRows], [2, cappedCols]]) {
      const [start, end] = spread(profile, sds);
      box[axis] = Math.max(box[axis], start);
      box[axis + 1] = Math.min(box[axis + 1], end);
    }
  }
  return box;
}

// The side, in source pixels, of the square frame around the box.
function frameSide(box, settings) {
  const [top, bottom, left, right] = box;
  const side = Math.max(Math.max(bottom - top, right - left), 1.0);
  return side * (1.0 + 2.0 * Number(settings.margin));
}

// Twice the ink area over its outline length (outside the image counts as ink, as in Python);
// `bounds` as for profiles.
function strokeWidth(ink, width, height, threshold, bounds) {
  const limit = 255.0 * threshold;
  let area = 0;
  let inner = 0;
  for (let y = 0; y < height; y++) {
    for (let x = Math.max(bounds.first[y], 0), i = y * width + x; x <= bounds.last[y]; x++, i++) {
      if (!(ink[i] > limit)) continue;
      area++;
      if (
        (y === 0 || ink[i - width] > limit) &&
        (y === height - 1 || ink[i + width] > limit) &&
        (x === 0 || ink[i - 1] > limit) &&
        (x === width - 1 || ink[i + 1] > limit)
      ) {
        inner++;
      }
    }
  }
  return (2.0 * area) / Math.max(area - inner, 1.0);
}

// 3x3 maximum filter, paper outside: the maximum across each row's neighbours, then down each
// column's (a maximum is exact in any order, and ink is never below paper, 0).
function dilate(ink, width, height) {
  const across = new Float32Array(ink.length);
  for (let y = 0, row = 0; y < height; y++, row += width) {
    for (let x = 0; x < width; x++) {
      let m = ink[row + x];
      if (x > 0 && ink[row + x - 1] > m) m = ink[row + x - 1];
      if (x < width - 1 && ink[row + x + 1] > m) m = ink[row + x + 1];
      across[row + x] = m;
    }
  }
  const out = new Float32Array(ink.length);
  for (let y = 0, row = 0; y < height; y++, row += width) {
    for (let x = 0; x < width; x++) {
      let m = across[row + x];
      if (y > 0 && across[row - width + x] > m) m = across[row - width + x];
      if (y < height - 1 && across[row + width + x] > m) m = across[row + width + x];
      out[row + x] = m;
    }
  }
  return out;
}

// Lines thinner than `min_width` output pixels are dilated (3x3 steps and a blend for the rest).
function thicken(ink, width, height, pixel, settings, bounds) {
  const lines = strokeWidth(ink, width, height, Number(settings.threshold), bounds);
  const grow = (Number(settings.min_width) * pixel - lines) / 2;
  if (!(grow > 0.25)) return ink;
  const steps = Math.floor(grow);
  const fraction = f32(grow - steps);
  let out = ink;
  for (let step = 0; step <= steps; step++) {
    const wider = dilate(out, width, height);
    if (steps > step) {
      out = wider;
    } else {
      const next = new Float32Array(out.length);
      for (let i = 0; i < out.length; i++) next[i] = f32(out[i] + f32(fraction * f32(wider[i] - out[i])));
      out = next;
    }
  }
  return out;
}

// Line density per row and per column of `mask` (width x height: the linear frame's ink over half
// its level; Python's _gap_profiles): every run of paper between two inks along a column (a row)
// adds one unit spread evenly over the rows (columns) it spans; runs open to the border add
// nothing. Summed in Python's order.
function gapProfiles(mask, width, height) {
  const rows = new Float64Array(height);
  const cols = new Float64Array(width);
  const above = new Int32Array(width).fill(-1);
  const addRun = (profile, last, here) => {
    if (last >= 0 && here - last > 1) {
      for (let k = last + 1; k < here; k++) profile[k] += 1.0 / (here - last - 1);
    }
  };
  for (let y = 0; y < height; y++) {
    let left = -1;
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x]) {
        addRun(cols, left, x);
        addRun(rows, above[x], y);
        left = x;
        above[x] = y;
      }
    }
  }
  return [rows, cols];
}

// The linear position shown at output `position` (Python's _shown_at): itself outside the box's
// room, by linear interpolation between the knots inside (room[k] < position <= room[k + 1]).
function shownAt(position, knots, room) {
  const last = room.length - 1;
  if (position <= room[0] || position >= room[last]) return position;
  let k = 0;
  while (room[k + 1] < position) k++;
  const width = room[k + 1] - room[k];
  const inside = width > 0 ? (position - room[k]) / width : 0.0;
  return knots[k] + inside * (knots[k + 1] - knots[k]);
}

// Output cell i's source span [first[i], first[i] + span[i]) (Python's _spans): `step` each from
// `start` (linear), except within the box [lo, hi), which keeps its place in the output and whose
// room is shared out as (1 - share) x its linear length + share x the line density `density`
// (per output cell of the linear frame).
function spans(start, step, size, lo, hi, density, share) {
  const first = new Float64Array(size);
  const span = new Float64Array(size).fill(step);
  for (let i = 0; i < size; i++) first[i] = start + step * i;
  const begin = (lo - start) / step;
  const end = (hi - start) / step;
  if (!(share > 0) || !(end > begin)) return { first, span };
  const lower = Math.floor(begin);
  const cells = Math.ceil(end) - lower;
  const knots = new Float64Array(cells + 1);
  const length = new Float64Array(cells);
  const dense = new Float64Array(cells);
  knots[0] = begin;
  let total = 0;
  for (let k = 0; k < cells; k++) {
    const c = lower + k;
    knots[k + 1] = Math.min(c + 1, end);
    length[k] = knots[k + 1] - Math.max(c, begin);
    if (c >= 0 && c < density.length) dense[k] = density[c] * length[k];
    total += dense[k];
  }
  if (!(total > 0)) return { first, span };
  const room = new Float64Array(cells + 1);
  room[0] = begin;
  for (let k = 0; k < cells; k++) {
    const part = ((1.0 - share) * length[k]) / (end - begin) + (share * dense[k]) / total;
    room[k + 1] = room[k] + part * (end - begin);
  }
  const edges = new Float64Array(size + 1);
  for (let i = 0; i <= size; i++) edges[i] = start + step * shownAt(i, knots, room);
  for (let i = 0; i < size; i++) {
    first[i] = edges[i];
    span[i] = edges[i + 1] - edges[i];
  }
  return { first, span };
}

// Output cell i averages the source span [first[i], first[i] + span[i]); cells outside 0..length
// are paper. Per cell its source indices and weights: index and weight [i * per .. i * per +
// count[i]].
function taps({ first, span }, length) {
  const size = first.length;
  const per = Math.ceil(Math.max(...span)) + 1;
  const index = new Int32Array(size * per);
  const weight = new Float32Array(size * per);
  const count = new Int32Array(size);
  for (let i = 0; i < size; i++) {
    const lo = first[i];
    const hi = lo + span[i];
    const cell0 = Math.floor(lo);
    for (let t = 0; t < per; t++) {
      const c = cell0 + t;
      const overlap = Math.max(Math.min(hi, c + 1) - Math.max(lo, c), 0);
      if (c >= 0 && c < length && overlap > 0) {
        index[i * per + count[i]] = c;
        weight[i * per + count[i]] = overlap / span[i];
        count[i]++;
      }
    }
  }
  return { index, weight, count, per };
}

// [from, to]: per row of `ink`, the columns from its first ink (above 0) to just past its last
// (0 and 0 for a row of paper).
function inkSpans(ink, width, height) {
  const from = new Int32Array(height);
  const to = new Int32Array(height);
  for (let y = 0; y < height; y++) {
    let x = 0;
    while (x < width && !(ink[y * width + x] > 0)) x++;
    let end = width;
    while (end > x && !(ink[y * width + end - 1] > 0)) end--;
    from[y] = x < width ? x : 0;
    to[y] = x < width ? end : 0;
  }
  return [from, to];
}

// Area-average the square frame around the box to size x size; within the box, `density` (from
// version 6) of each axis's room follows the line density [rows, cols] (gapProfiles). `inked`:
// inkSpans of `ink`.
export function resampleFrame(ink, width, height, box, settings, size, inked, density = [[], []]) {
  const [top, bottom, left, right] = box;
  const side = frameSide(box, settings);
  const step = side / size;
  const share = Number(settings.density || 0);
  const rows = taps(spans((top + bottom) / 2 - side / 2, step, size, top, bottom, density[0], share), height);
  const cols = taps(spans((left + right) / 2 - side / 2, step, size, left, right, density[1], share), width);
  const [from, to] = inked;
  const tall = new Float64Array(size * width);
  for (let i = 0; i < size; i++) {
    for (let k = i * rows.per; k < i * rows.per + rows.count[i]; k++) {
      const y = rows.index[k];
      const wt = rows.weight[k];
      // paper adds nothing (+0): only the row's span from its first to its last ink
      for (let x = from[y], at = i * width, source = y * width; x < to[y]; x++) {
        tall[at + x] += wt * ink[source + x];
      }
    }
  }
  const out = new Uint8Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      let v = 0;
      for (let k = j * cols.per; k < j * cols.per + cols.count[j]; k++) {
        v += cols.weight[k] * tall[i * width + cols.index[k]];
      }
      out[i * size + j] = Math.min(Math.max(roundHalfEven(v), 0), 255);
    }
  }
  return out;
}

// Ink-bright image {width, height, data} -> the normalised size x size uint8 image.
export function normalizeInk(img, settings) {
  const size = Number(settings.size);
  const { width, height } = img;
  const stretched = stretchContrast(flatten(img, settings), settings);
  // the ink above the threshold lies within these spans of the rows, before the clutter and after
  const lines = lineCounts(stretched.mask, width, height);
  let ink = removeClutter(stretched, lines, width, height, settings);
  const box = inkBox(ink, width, height, settings, lines[0]);
  if (Number(settings.min_width || 0) > 0) {
    ink = thicken(ink, width, height, frameSide(box, settings) / size, settings, lines[0]);
  }
  const inked = inkSpans(ink, width, height);
  const linear = resampleFrame(ink, width, height, box, settings, size, inked);
  if (!(Number(settings.density || 0) > 0)) return linear; // models before version 6
  const density = gapProfiles(linear.map((v) => (v > 127 ? 1 : 0)), size, size);
  return resampleFrame(ink, width, height, box, settings, size, inked, density);
}

// Strokes -> {image: uint8 size x size, input: float32 x / 127.5 - 1 (the model's (1,1,s,s))}.
export function strokesInput(strokes, settings) {
  const image = normalizeInk(drawStrokes(strokes, settings), settings);
  const input = new Float32Array(image.length);
  for (let i = 0; i < image.length; i++) input[i] = image[i] / 127.5 - 1.0;
  return { image, input };
}
