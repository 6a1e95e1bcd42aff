// The page: section 1 walks one block through the fusion with live numbers; section 2 runs a small
// RepVGG trained on Fashion-MNIST, training-time and deploy, side by side. Plain DOM, no framework.
import {
  Tensor, convert, parseCheckpoint, modelFromStateDict, parseIdx, gunzipIfNeeded, getThreads, getBackend, VERSION,
  fuseConvBN, withZeroBias, weightSqnr,
} from '../dist/index.js';
import { BNS, BN_PARAMS, makeBlock, fusionSteps, bnScale, getBN, setBN, blockInput, runBranched, runFused, maxAbsDiff, stats } from './lesson.js';

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k);
  return e;
};
const f4 = (v) => (Object.is(v, -0) ? 0 : v).toFixed(4);
// an operand inside an equation: negatives in parentheses, so that "β − μ·s" reads "0.1 − (−0.2)·1.1"
const op = (v) => (v < 0 ? `(${f4(v).replace('-', '−')})` : f4(v));
const f2 = (v) => (Math.abs(v) < 0.005 ? 0 : v).toFixed(2);

// ---- drawing ---------------------------------------------------------------------------------------

// A kernel (F, C/g, kh, kw) as a table: one block of kh×kw cells per (output, input) channel pair,
// coloured by value (red positive, blue negative); the value is in the cell, the full number in
// its title and data-value.
function kernelTable(t, caption, testid) {
  const [F, Cg, kh, kw] = t.shape;
  let max = 0;
  for (const v of t.data) max = Math.max(max, Math.abs(v));
  const table = el('table', { className: 'kernel' }, el('caption', { textContent: caption }));
  if (testid) table.dataset.testid = testid;
  for (let f = 0; f < F; f++) {
    for (let i = 0; i < kh; i++) {
      const tr = el('tr');
      if (i === 0) tr.className = 'first';
      if (i === 0) tr.append(el('th', { scope: 'row', rowSpan: kh, textContent: `out ${f}` }));
      for (let c = 0; c < Cg; c++) {
        for (let j = 0; j < kw; j++) {
          const idx = ((f * Cg + c) * kh + i) * kw + j;
          const v = t.data[idx];
          const a = max === 0 ? 0 : Math.abs(v) / max;
          const td = el('td', { textContent: f2(v), title: `[${f}, ${c}, ${i}, ${j}] = ${v}` });
          td.style.background = v >= 0 ? `rgba(214, 69, 65, ${a.toFixed(3)})` : `rgba(52, 101, 164, ${a.toFixed(3)})`;
          if (j === 0 && c > 0) td.className = 'sep';
          td.dataset.value = String(v);
          td.dataset.index = String(idx);
          tr.append(td);
        }
      }
      table.append(tr);
    }
  }
  return table;
}

function biasList(b, label, testid) {
  const p = el('p', { className: 'bias' }, `${label} = [ ${Array.from(b.data, f4).join(', ')} ]`);
  if (testid) p.dataset.testid = testid;
  p.dataset.values = JSON.stringify(Array.from(b.data));
  return p;
}

// One channel of a (N, C, H, W) tensor as a grey image, black at its minimum (or at 0 for a map
// with no negative values, as after a ReLU) and white at its maximum.
function mapCanvas(t, n, c, label) {
  const [, C, H, W] = t.shape;
  const off = (n * C + c) * H * W;
  let lo = 0, hi = 0;
  for (let i = 0; i < H * W; i++) { lo = Math.min(lo, t.data[off + i]); hi = Math.max(hi, t.data[off + i]); }
  const canvas = el('canvas', { width: W, height: H, title: label });
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(W, H);
  for (let i = 0; i < H * W; i++) {
    const g = hi === lo ? 0 : Math.round((255 * (t.data[off + i] - lo)) / (hi - lo));
    img.data.set([g, g, g, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

function maps(t, label) {
  const [, C] = t.shape;
  const div = el('div', { className: 'maps' });
  for (let c = 0; c < C; c++) div.append(el('figure', {}, mapCanvas(t, 0, c, `${label}, channel ${c}`), el('figcaption', { textContent: `ch ${c}` })));
  return div;
}

// ---- section 1: one block ------------------------------------------------------------------------

const state = { channels: 2, groups: 1, channel: 0, reluInside: false, block: null };

function rebuildBlock() {
  state.block = makeBlock(state.channels, state.groups, 1);
  state.channel = Math.min(state.channel, state.channels - 1);
  const sel = $('#channel');
  sel.replaceChildren(...Array.from({ length: state.channels }, (_, f) => el('option', { value: String(f), textContent: String(f) })));
  sel.value = String(state.channel);
  syncSliders();
  renderBlock();
}

function buildSliders() {
  const box = $('#sliders');
  BNS.forEach((bn, which) => {
    const fs = el('fieldset', {}, el('legend', { textContent: bn.label }));
    for (const p of BN_PARAMS) {
      const id = `bn-${bn.key}-${p.key}`;
      const input = el('input', { type: 'range', id, min: String(p.min), max: String(p.max), step: String(p.step) });
      const out = el('output', { htmlFor: id, id: `${id}-out` });
      input.addEventListener('input', () => {
        setBN(state.block, which, p.key, state.channel, Number(input.value));
        out.value = input.value;
        renderBlock();
      });
      fs.append(el('div', { className: 'slider' }, el('label', { htmlFor: id, textContent: `${p.symbol}` }), input, out));
    }
    box.append(fs);
  });
}

function syncSliders() {
  BNS.forEach((bn, which) => {
    for (const p of BN_PARAMS) {
      const id = `bn-${bn.key}-${p.key}`;
      const v = getBN(state.block, which, p.key, state.channel);
      $(`#${id}`).value = String(v);
      $(`#${id}`).setAttribute('aria-label', `${p.symbol} of the ${bn.label}, output channel ${state.channel}`);
      $(`#${id}-out`).value = String(v);
    }
  });
  for (const s of document.querySelectorAll('.ch-name')) s.textContent = String(state.channel);
}

function step(title, eq, ...content) {
  return el('article', { className: 'step' }, el('h4', { textContent: title }), el('p', { className: 'eq', textContent: eq }), ...content);
}

function renderBlock() {
  const b = state.block;
  const f = state.channel;
  const { dense, point, padded, I, ident, sum } = fusionSteps(b);
  const bn = (which, key) => getBN(b, which, key, f);
  const eps = b.rbrDense.bn.eps;
  const s = [0, 1, 2].map((w) => bnScale(b, w, f));
  const fold = (w, bias) => `s = γ/√(σ² + ε) = ${op(bn(w, 'gamma'))}/√(${op(bn(w, 'var'))} + ${eps}) = ${f4(s[w])};   ` +
    `b'[${f}] = β − μ·s = ${op(bn(w, 'beta'))} − ${op(bn(w, 'mean'))}·${op(s[w])} = ${f4(bias.data[f])}`;
  const wide = b.spec.outChannels / b.spec.groups;
  $('#branches').replaceChildren(
    kernelTable(b.rbrDense.conv.weight.data, 'W₃: rbr_dense.conv.weight'),
    kernelTable(b.rbr1x1.conv.weight.data, 'W₁: rbr_1x1.conv.weight'),
    el('p', { className: 'note', textContent: `identity: x itself (${wide} input channel${wide > 1 ? 's' : ''} per group), then its own BN` }),
  );
  $('#steps').replaceChildren(
    step('1. Fold BN into the 3×3', `W₃'[${f}] = W₃[${f}]·s, with ${fold(0, dense.bias)}`, kernelTable(dense.kernel, "W₃'"), biasList(dense.bias, "b₃'")),
    step('2. Fold BN into the 1×1', `W₁'[${f}] = W₁[${f}]·s, with ${fold(1, point.bias)}`, kernelTable(point.kernel, "W₁'"), biasList(point.bias, "b₁'")),
    step('3. Pad the 1×1 to 3×3', `P[${f}, c] = the 3×3 of zeros with W₁'[${f}, c] = ${f4(point.kernel.data[f * wide])}${wide > 1 ? ', …' : ''} at its centre: the same conv, with padding 1`, kernelTable(padded, 'P = pad(W₁\')')),
    step('4. The identity as a kernel', `I[${f}, c] = 1 at the centre where c is input channel ${f % wide} of the group, else 0: I ⊛ x = x`, kernelTable(I, 'I')),
    step('5. Fold the identity BN', `I'[${f}] = I[${f}]·s, with ${fold(2, ident.bias)}`, kernelTable(ident.kernel, "I'"), biasList(ident.bias, "b_id'")),
    step('6. Sum the three kernels and biases', `K[${f}] = W₃'[${f}] + P[${f}] + I'[${f}];   b[${f}] = ${op(dense.bias.data[f])} + ${op(point.bias.data[f])} + ${op(ident.bias.data[f])} = ${f4(sum.bias.data[f])}`,
      kernelTable(sum.kernel, 'K: rbr_reparam.weight', 'fused-kernel'), biasList(sum.bias, 'b: rbr_reparam.bias', 'fused-bias')),
  );
  const x = blockInput(state.channels);
  const yb = runBranched(b, x, state.reluInside);
  const yf = runFused(sum, x, state.groups);
  const d = maxAbsDiff(yb, yf);
  $('#run').replaceChildren(
    el('div', {}, el('h4', { textContent: 'input x' }), maps(x, 'input')),
    el('div', {}, el('h4', { textContent: state.reluInside ? 'branches, ReLU inside each' : 'training-time block' }), maps(yb, 'training-time block output')),
    el('div', {}, el('h4', { textContent: 'fused conv: ReLU(K ⊛ x + b)' }), maps(yf, 'fused conv output')),
  );
  const diff = $('[data-testid="block-max-diff"]');
  diff.textContent = d.toExponential(2);
  diff.dataset.value = String(d);
  $('#relu-note').hidden = !state.reluInside;
  $('#diff-verdict').textContent = state.reluInside
    ? '— not a rounding error: ReLU(a) + ReLU(b) ≠ ReLU(a + b), so no single linear conv can equal branches with a ReLU inside.'
    : '— float64 rounding: the fused conv computes the same function.';
}

function initBlockSection() {
  buildSliders();
  $('#channels').addEventListener('change', (e) => { state.channels = Number(e.target.value); rebuildBlock(); });
  $('#groups').addEventListener('change', (e) => { state.groups = Number(e.target.value); rebuildBlock(); });
  $('#channel').addEventListener('change', (e) => { state.channel = Number(e.target.value); syncSliders(); renderBlock(); });
  $('#relu-inside').addEventListener('change', (e) => { state.reluInside = e.target.checked; renderBlock(); });
  rebuildBlock();
}

// ---- section 2: a whole model -------------------------------------------------------------------

const CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];
const net = { train: null, deploy: null, x: null, y: null };

function softmax(logits, n) {
  const K = logits.shape[1];
  const row = Array.from(logits.data.subarray(n * K, (n + 1) * K));
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

function image(i) {
  const per = 28 * 28;
  return new Tensor(net.x.data.slice(i * per, (i + 1) * per), [1, 1, 28, 28]);
}

function predictionCard(title, probs, ms, testid) {
  const order = probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]).slice(0, 5);
  const list = el('ol');
  for (const [p, k] of order) {
    const bar = el('meter', { min: 0, max: 1, value: p });
    bar.setAttribute('aria-label', `${CLASSES[k]} probability`);
    list.append(el('li', {}, el('span', { className: 'cls', textContent: CLASSES[k] }), bar, el('span', { textContent: ` ${(100 * p).toFixed(1)}%` })));
  }
  const card = el('div', { className: 'card' }, el('h4', { textContent: title }),
    el('p', {}, 'prediction: ', el('strong', { textContent: CLASSES[order[0][1]] }), ` · ${ms.toFixed(1)} ms`), list);
  card.dataset.testid = testid;
  card.dataset.class = String(order[0][1]);
  return card;
}

function showImage(i) {
  const x = image(i);
  let t = performance.now();
  const lt = net.train.forward(x);
  const msTrain = performance.now() - t;
  t = performance.now();
  const ld = net.deploy.forward(x);
  const msDeploy = performance.now() - t;
  $('#picked').replaceChildren(mapCanvas(x, 0, 0, `test image ${i}: ${CLASSES[net.y[i]]}`), el('p', { textContent: `image ${i}, label: ${CLASSES[net.y[i]]}` }));
  $('#predictions').replaceChildren(
    predictionCard('training-time model (eval)', softmax(lt, 0), msTrain, 'pred-train'),
    predictionCard('deploy model (plain 3×3 convs)', softmax(ld, 0), msDeploy, 'pred-deploy'),
  );
  // the deploy model's feature maps at the end of each stage (first 8 channels)
  const stages = net.deploy.plan.stages.map((s) => s.length);
  const blocks = net.deploy.blocks();
  const rows = [];
  let h = x, k = 0;
  stages.forEach((len, s) => {
    for (let j = 0; j < len; j++) h = blocks[k++].forward(h);
    const [, C, H, W] = h.shape;
    const fig = el('div', { className: 'maps' });
    for (let c = 0; c < Math.min(8, C); c++) fig.append(mapCanvas(h, 0, c, `stage ${s}, channel ${c}`));
    rows.push(el('div', { className: 'stage' }, el('h4', { textContent: `stage ${s}: ${C} × ${H}×${W}` }), fig));
  });
  $('#features').replaceChildren(...rows);
  $('[data-testid="model-ready"]').textContent = 'ready';
}

function runAll() {
  const N = net.y.length;
  const per = 28 * 28;
  let agree = 0, rightTrain = 0, rightDeploy = 0, msTrain = 0, msDeploy = 0;
  const argmax = (t, n) => { let best = 0; for (let k = 1; k < 10; k++) if (t.data[n * 10 + k] > t.data[n * 10 + best]) best = k; return best; };
  for (let b = 0; b < N; b += 100) {
    const n = Math.min(100, N - b);
    const x = new Tensor(net.x.data.subarray(b * per, (b + n) * per), [n, 1, 28, 28]);
    let t = performance.now();
    const lt = net.train.forward(x);
    msTrain += performance.now() - t;
    t = performance.now();
    const ld = net.deploy.forward(x);
    msDeploy += performance.now() - t;
    for (let i = 0; i < n; i++) {
      const a = argmax(lt, i), d = argmax(ld, i);
      agree += a === d ? 1 : 0;
      rightTrain += a === net.y[b + i] ? 1 : 0;
      rightDeploy += d === net.y[b + i] ? 1 : 0;
    }
  }
  const out = $('[data-testid="model-agreement"]');
  out.textContent = String(agree / N);
  out.dataset.agree = String(agree);
  out.dataset.correctTrain = String(rightTrain);
  out.dataset.correctDeploy = String(rightDeploy);
  $('#agreement-detail').textContent = ` (${agree} of ${N} images get the same class; accuracy ${(100 * rightTrain / N).toFixed(1)}% training-time, ` +
    `${(100 * rightDeploy / N).toFixed(1)}% deploy; ${msTrain.toFixed(0)} ms vs ${msDeploy.toFixed(0)} ms for all ${N})`;
}

// ---- section 3: INT8 ------------------------------------------------------------------------------

// block i's kernels in float64: the fused one (as deployed) and its 3×3 branch alone, BN folded
function int8Kernels(i) {
  const b = net.train.blocks()[i];
  const dense = fuseConvBN(withZeroBias(b.rbrDense.conv.weight.data), stats(b.rbrDense.bn), 'float64').kernel;
  return { fused: net.deploy.blocks()[i].rbrReparam.weight.data, dense };
}

const channelOf = (t, c) => t.data.subarray(c * (t.size / t.shape[0]), (c + 1) * (t.size / t.shape[0]));
const absMax = (v) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

// One channel's values as a strip plot over [−r, r] (r: the fused channel's max|K|): a tick per weight,
// fused above and 3×3 alone below, and the INT8 grid of each (its step max|K_c|/127) as faint lines.
function histogram(fused, dense, label) {
  const W = 640, H = 150, r = Math.max(absMax(fused), absMax(dense)) || 1, x = (v) => 20 + ((v + r) / (2 * r)) * (W - 40);
  const parts = [];
  const grid = (v, y0, y1, color) => {
    const s = absMax(v) / 127;
    if (s === 0) return;
    for (let k = -127; k <= 127; k++) parts.push(`<line x1="${x(k * s).toFixed(1)}" x2="${x(k * s).toFixed(1)}" y1="${y0}" y2="${y1}" stroke="${color}" stroke-opacity="0.25"/>`);
  };
  grid(fused, 20, 70, '#c0392b');
  grid(dense, 80, 130, '#2c7fb8');
  for (const v of fused) parts.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="30" y2="60" stroke="#c0392b" stroke-width="2"/>`);
  for (const v of dense) parts.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="90" y2="120" stroke="#2c7fb8" stroke-width="2"/>`);
  parts.push(`<text x="20" y="14" font-size="11">fused: step ${(absMax(fused) / 127).toExponential(2)}</text>`, `<text x="20" y="146" font-size="11">3×3 branch alone: step ${(absMax(dense) / 127).toExponential(2)}</text>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" class="hist" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${label}">${parts.join('')}</svg>`;
  const div = el('div');
  div.innerHTML = svg;
  const node = div.firstChild;
  node.dataset.testid = 'int8-hist';
  node.dataset.step = String(absMax(fused) / 127);
  return node;
}

function showInt8() {
  const i = Number($('#int8-layer').value);
  const { fused, dense } = int8Kernels(i);
  const pick = $('#int8-channel');
  pick.max = String(fused.shape[0] - 1);
  const c = Math.max(0, Math.min(fused.shape[0] - 1, Number(pick.value) | 0));
  $('#int8-hist').replaceChildren(histogram(channelOf(fused, c), channelOf(dense, c), `layer ${i}, channel ${c}: fused kernel and 3×3 branch with their INT8 grids`));
}

function initInt8Section() {
  const names = net.train.children().filter(([n]) => n !== 'linear').map(([n]) => n);
  $('#int8-layer').replaceChildren(...names.map((n, i) => el('option', { value: String(i), textContent: n })));
  const rows = names.map((n, i) => {
    const { fused, dense } = int8Kernels(i);
    const F = fused.shape[0];
    let ratio = 0;
    for (let c = 0; c < F; c++) ratio = Math.max(ratio, absMax(channelOf(fused, c)) / (absMax(channelOf(dense, c)) || Infinity));
    const tr = el('tr', {}, el('td', { textContent: n }), el('td', { textContent: ratio.toFixed(2) }), el('td', { textContent: weightSqnr(fused.data, F).toFixed(1) }), el('td', { textContent: weightSqnr(dense.data, F).toFixed(1) }));
    tr.dataset.sqnr = String(weightSqnr(fused.data, F));
    return tr;
  });
  $('#int8-layers tbody').replaceChildren(...rows);
  $('#int8-layer').addEventListener('change', showInt8);
  $('#int8-channel').addEventListener('change', showInt8);
  showInt8();
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function initModelSection() {
  const status = $('#model-status');
  try {
    const [ckpt, images, labels] = await Promise.all([
      fetchBytes('model/train.safetensors'),
      fetchBytes('../fixtures/fashion-mnist/t10k-images-idx3-ubyte.gz'),
      fetchBytes('../fixtures/fashion-mnist/t10k-labels-idx1-ubyte.gz'),
    ]);
    net.train = modelFromStateDict(parseCheckpoint(ckpt).entries).eval();
    net.deploy = convert(net.train);
    const xi = parseIdx(await gunzipIfNeeded(images), 'test images');
    net.y = Int32Array.from(parseIdx(await gunzipIfNeeded(labels), 'test labels').data);
    // the demo's preprocessing: pixels on [0, 1], then Fashion-MNIST's training mean and std
    net.x = new Tensor(Float32Array.from(xi.data, (v) => (v / 255 - 0.286) / 0.353), [xi.shape[0], 1, 28, 28]);
    status.textContent = `${net.y.length} Fashion-MNIST test images; model ${net.train.plan.stages.map((s) => s.length).join('-')} blocks, ` +
      `${net.train.blocks().length} fused into ${net.deploy.blocks().length} plain convs.`;
    const pick = $('#image-index');
    pick.max = String(net.y.length - 1);
    pick.addEventListener('change', () => showImage(Math.max(0, Math.min(net.y.length - 1, Number(pick.value) | 0))));
    $('#prev').addEventListener('click', () => { pick.value = String(Math.max(0, Number(pick.value) - 1)); showImage(Number(pick.value)); });
    $('#next').addEventListener('click', () => { pick.value = String(Math.min(net.y.length - 1, Number(pick.value) + 1)); showImage(Number(pick.value)); });
    $('#run-all').addEventListener('click', runAll);
    $('#run-all').disabled = false;
    showImage(0);
    initInt8Section();
  } catch (e) {
    status.textContent = `could not load the model: ${e.message}`;
    throw e;
  }
}

$('#version').textContent = VERSION;
$('#threads').textContent = String(getThreads());
$('#backend').textContent = getBackend();
initBlockSection();
await initModelSection();
