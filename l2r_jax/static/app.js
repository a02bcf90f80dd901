// The labeling page (l2r_jax/serve.py): the pending query, answered by keys and clicks.
// What is marked is kept in the browser and on the server as it is given; submitted answers go
// through the same checks as `label answer` and the refusals are shown as they come.
'use strict';

const token = document.querySelector('meta[name="l2r-token"]').content;
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const RETRY_S = 3;   // seconds between looks at a workdir another process holds
let S = null;        // the server's state
let marks = {};      // pool index -> {label, cleared, skipped, aside, joints: [[x, y, v] | null],
                     //                 points, done, t}
let focus = 0;       // the item in view (its position in S.items)
let draftBusy = false, draftAgain = false;
let sending = null;  // the pool indices (strings) of a submission on its way, or null

async function api(method, path, body) {
  const options = {method, headers: {}};
  if (method === 'POST') {
    options.headers['Content-Type'] = 'application/json';
    options.headers['X-L2R-Token'] = token;
    options.body = JSON.stringify(body || {});
  }
  const response = await fetch(path, options);
  let data = {};
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (!response.ok) {
    const error = new Error(data.refused || `${response.status} ${response.statusText}`);
    error.status = response.status;
    error.retry = Boolean(data.retry);   // another process holds the workdir for a while
    throw error;
  }
  return data;
}

function show(text, error) {
  const m = $('message');
  m.textContent = text || '';
  m.className = text ? (error ? 'error' : 'info') : '';
}

function el(tag, attrs, ...children) {
  const node = tag.startsWith('svg:') ? document.createElementNS(SVG, tag.slice(4))
                                      : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.setAttribute('class', v);
    else if (k === 'style') Object.assign(node.style, v);   // through the CSSOM: no inline CSS
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// -- the draft: kept as it is given ---------------------------------------------------------------

function storageKey() { return `l2r-jax:${S.workdir}:${S.query_id}`; }

function changed(index) {
  if (index !== undefined) marks[index].t = Date.now();
  try { localStorage.setItem(storageKey(), JSON.stringify(marks)); } catch (e) { /* full */ }
  sendDraft();
  render();
}

async function sendDraft() {
  if (draftBusy) { draftAgain = true; return; }
  draftBusy = true;
  try {
    await api('POST', '/api/draft', {query_id: S.query_id, marks});
  } catch (e) {
    show(`the draft could not be saved on the server (${e.message}); it is kept in this browser.`,
         true);
  } finally {
    draftBusy = false;
    if (draftAgain) { draftAgain = false; sendDraft(); }
  }
}

function merged(server, local, pending) {
  const out = {};
  for (const source of [server || {}, local || {}]) {
    for (const [k, v] of Object.entries(source)) {
      if (pending.has(k) && v && (!out[k] || (v.t || 0) >= (out[k].t || 0))) out[k] = v;
    }
  }
  return out;
}

// -- loading --------------------------------------------------------------------------------------

// `done`: what the request before it did (a submission's reply), kept when loading fails;
// `retried`: a look again at a workdir another process held (its message is done with once free).
async function load(done, retried) {
  let state;
  try {
    state = await api('GET', '/api/state');
  } catch (e) {
    if (e.retry) {   // another process trains on the workdir: the page comes back when it is done
      show(`${done ? done + ' ' : ''}${e.message} This page looks again every ${RETRY_S} s.`, true);
      setTimeout(() => load(done, true), RETRY_S * 1000);
      return;
    }
    show(done ? `${done} The page could not show what is left (${e.message}): reload it.`
              : e.message, true);
    return;
  }
  if (state.busy) {   // a round trains, or another request is being answered: look again
    if (state.training && !state.training.done) { watch(); return; }
    await new Promise((r) => setTimeout(r, 300));
    return load(done, retried);
  }
  if (retried) show(done || '', false);
  S = state;
  const pending = new Set(S.items.map((it) => String(it.index)));
  let local = null;
  try { local = JSON.parse(localStorage.getItem(storageKey()) || 'null'); } catch (e) { }
  try {   // this workdir's marks of earlier queries (answered, then replaced) are done with
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith(`l2r-jax:${S.workdir}:`) && key !== storageKey()) {
        localStorage.removeItem(key);
      }
    }
  } catch (e) { /* no storage */ }
  marks = merged(S.draft, local, pending);
  // What the server's draft lacks (marks whose saving failed, or made while this page reloaded, and
  // the answers just submitted) is sent now: a page opened elsewhere opens on the same marks.
  if (JSON.stringify(marks) !== JSON.stringify(S.draft || {})) sendDraft();
  // The first image not answered yet (after a submission, a reload, a new query).
  focus = Math.max(0, S.items.findIndex((it) => !answerOf(it) && !(marks[it.index] || {}).skipped &&
                                              !(marks[it.index] || {}).aside));
  $('where').textContent = `${S.workdir} · ${S.task} · ${S.labeled} of ${S.pool_size} labeled · ` +
                           `${S.rounds} round${S.rounds === 1 ? '' : 's'}`;
  // A table holds a class per sample; a pose's or a crowd's labels are arrays: JSON lines only.
  $('labels-csv').hidden = $('labels-or').hidden = S.task !== 'classification';
  curve();
  render();
  if (S.training && !S.training.done) watch();
}

// -- what an item's answer is ---------------------------------------------------------------------

// The class an item shows: the person's, else the model's guess (dashed: an answer only once
// Enter confirms it) unless the person cleared it.
function classOf(item) {
  const m = marks[item.index] || {};
  return m.label || (m.cleared ? undefined : item.predicted);
}

function answerOf(item) {
  const m = marks[item.index] || {};
  if (m.skipped || m.aside) return null;
  if (S.task === 'classification') {   // the person's class: the model's only once confirmed
    return m.label === undefined ? null : {index: item.index, id: item.id, label: m.label};
  }
  if (S.task === 'pose') {
    const joints = m.joints || [];
    if (joints.length !== S.joint_names.length || joints.some((j) => !j)) return null;
    return {index: item.index, id: item.id, joints};
  }
  return m.done ? {index: item.index, id: item.id, points: m.points || []} : null;
}

function counts() {
  let answered = 0, skipped = 0, aside = 0;
  for (const item of S.items) {
    const m = marks[item.index] || {};
    if (m.aside) aside += 1;
    else if (m.skipped) skipped += 1;
    else if (answerOf(item)) answered += 1;
  }
  return {answered, skipped, aside, left: S.items.length - answered - skipped - aside};
}

// The items marked to be set aside (no class fits, or none can be told): never asked again.
function asideOf() {
  return S.items.filter((it) => (marks[it.index] || {}).aside)
                .map((it) => ({index: it.index, id: it.id}));
}

async function submit(list) {
  if (sending) {
    show('The answers are on their way: wait for the server\'s reply.', false);
    return;
  }
  const answers = list || S.items.map(answerOf).filter((a) => a);
  const aside = list ? [] : asideOf();
  if (!answers.length && !aside.length) {
    show('Nothing to submit yet: answer an image first.', true);
    return;
  }
  sending = new Set([...answers, ...aside].map((a) => String(a.index)));
  $('submit').disabled = true;
  try {
    const said = [];
    if (aside.length) said.push((await api('POST', '/api/set_aside', {samples: aside})).message);
    if (answers.length) said.push((await api('POST', '/api/answers', {answers})).message);
    const message = said.join(' ');
    show(message, false);
    await load(message);
  } catch (e) {
    show(e.message, true);
    // Refused (a teammate answered one of them meanwhile, say): the page shows what is left now,
    // the marks kept, so the rest can be submitted again.
    if (e.status === 422) { sending = null; await load(); }
  } finally {
    sending = null;
    if ($('progress').hidden) $('submit').disabled = false;
  }
}

// -- train and ask again --------------------------------------------------------------------------

async function train() {
  try {
    await api('POST', '/api/train', {});
  } catch (e) { show(e.message, true); return; }
  watch();
}

async function watch() {
  $('progress').hidden = false;
  $('train').disabled = $('submit').disabled = true;
  for (;;) {
    let p;
    try { p = (await api('GET', '/api/progress')).training; } catch (e) { show(e.message, true); }
    if (p === null) {     // no round in this server: the page waited on another request
      $('progress').hidden = true;
      $('train').disabled = $('submit').disabled = false;
      await load();
      return;
    }
    if (p) {
      const bar = $('bar');
      if (p.estimate) {
        bar.classList.remove('unknown');
        bar.style.width = `${Math.min(97, 100 * p.elapsed / p.estimate)}%`;
      } else {
        bar.classList.add('unknown');
      }
      $('progress-text').textContent = `${p.message}: ${p.elapsed.toFixed(1)} s` +
          (p.estimate ? ` (the last round took ${p.estimate.toFixed(1)} s)` : '');
      if (p.done) {
        $('progress').hidden = true;
        $('train').disabled = $('submit').disabled = false;
        if (p.error) show(p.error, true);
        else show(`Round done in ${p.elapsed.toFixed(1)} s: ${p.message}.`, false);
        await load();
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 400));
  }
}

// -- views ----------------------------------------------------------------------------------------

function render() {
  const c = counts();
  $('count').textContent = `${S.items.length} asked · ${c.answered} answered · ${c.skipped} ` +
                           `skipped · ${c.aside ? c.aside + ' set aside · ' : ''}${c.left} left`;
  const main = $('main');
  main.replaceChildren();
  if (!S.items.length) {
    main.append(el('div', {class: 'empty'}, S.asked
        ? 'The query is answered. Train and ask again for the next one.'
        : 'Nothing asked yet: Train and ask again (the first query, with no label, is random).'));
  } else if (S.task === 'classification') {
    main.append(grid());
  } else {
    main.append(marker());
  }
  help();
}

function grid() {
  const g = el('div', {class: 'grid', id: 'grid'});
  S.items.forEach((item, k) => {
    const m = marks[item.index] || {};
    const chosen = classOf(item);
    const card = el('div', {class: 'card', 'data-index': item.index, onclick: () => {
      focus = k; render();
    }});
    if (k === focus) card.classList.add('focus');
    if (m.skipped || m.aside) card.classList.add('skipped');
    else if (m.label) card.classList.add('answered');
    const img = el('img', {src: item.image, alt: item.id});
    const sharpen = () => { if (img.naturalWidth && img.naturalWidth < 128) img.classList.add('pixelated'); };
    img.addEventListener('load', sharpen);
    sharpen();
    card.append(img, el('div', {class: 'meta'}, `${item.index} · ${item.id}`));
    if (item.predicted !== undefined) {
      card.append(el('div', {class: 'guess'},
                     `model: ${item.predicted} (${item.probability.toFixed(3)})`));
    }
    const row = el('div', {class: 'classes'});
    S.classes.forEach((name, c) => {
      const b = el('button', {type: 'button', 'data-class': name, onclick: (e) => {
        e.stopPropagation(); focus = k; choose(name);
      }}, ...(S.keys[c] && S.keys[c] !== name.toLowerCase()
              ? [el('span', {class: 'key'}, S.keys[c])] : []), name);
      if (!m.skipped && !m.aside && chosen === name) b.classList.add(m.label ? 'on' : 'guess');
      row.append(b);
    });
    row.append(el('button', {type: 'button', class: m.skipped ? 'on' : '', onclick: (e) => {
      e.stopPropagation(); focus = k; skip();
    }}, 'skip'), el('button', {type: 'button', class: m.aside ? 'on' : '', 'data-aside': '',
                               title: 'no class fits: never asked again', onclick: (e) => {
      e.stopPropagation(); focus = k; setAside();
    }}, 'set aside'));
    card.append(row);
    g.append(card);
  });
  return g;
}

function current() { return S.items[focus]; }

// The item in view, unless its answer is on its way to the server (then it cannot change here).
function editable() {
  const item = current();
  if (sending && sending.has(String(item.index))) {
    show('This image\'s answer is on its way to the server; once it is taught, a change to it is ' +
         'a correction (label answer --relabel).', true);
    return null;
  }
  return item;
}

function choose(name) {
  const item = editable();
  if (!item) return;
  marks[item.index] = {label: name};
  focus = Math.min(focus + 1, S.items.length - 1);
  changed(item.index);
}

// `skipped`: asked again; `aside`: no class fits (or none can be told), set aside when submitted,
// never asked again. One or the other, toggled.
function toggle(flag) {
  const item = editable();
  if (!item) return;
  const m = marks[item.index] || {};
  marks[item.index] = Object.assign(m, {skipped: false, aside: false, [flag]: !m[flag]});
  if (marks[item.index][flag]) focus = Math.min(focus + 1, S.items.length - 1);
  changed(item.index);
}

const skip = () => toggle('skipped');
const setAside = () => toggle('aside');

function marker() {
  const item = current();
  const m = marks[item.index] = marks[item.index] || {};
  const [h, w] = S.input_hw;
  const side = 560;
  const scale = side / Math.max(h, w);
  const strip = el('div', {class: 'strip'});
  S.items.forEach((it, k) => {
    const b = el('button', {type: 'button', onclick: () => { focus = k; render(); }},
                 `${k + 1}: ${it.index}`);
    if (answerOf(it)) b.classList.add('complete');
    if (k === focus) b.classList.add('current');
    strip.append(b);
  });
  const stage = el('div', {class: 'stage', style: {width: `${w * scale}px`, height: `${h * scale}px`}});
  const img = el('img', {src: item.image, alt: item.id, draggable: 'false'});
  if (Math.max(h, w) < 256) img.classList.add('pixelated');
  const svg = el('svg:svg', {id: 'marks', viewBox: `0 0 ${w} ${h}`,
                             preserveAspectRatio: 'none'});
  svg.addEventListener('click', (e) => {
    const r = svg.getBoundingClientRect();
    const x = (e.clientX - r.left) / r.width * w - 0.5, y = (e.clientY - r.top) / r.height * h - 0.5;
    if (S.task === 'pose') place(x, y); else head(x, y, 6 / scale);
  });
  stage.append(img, svg);
  draw(svg, m, scale);
  const panel = el('div', {});
  panel.append(el('div', {class: 'meta'}, `${item.index} · ${item.id}` +
                  (item.score != null ? ` · score ${Number(item.score).toPrecision(4)}` : '')));
  if (S.task === 'pose') {
    const joints = m.joints || [];
    const next = joints.length < S.joint_names.length ? joints.length : -1;
    panel.append(el('div', {class: 'big', id: 'next-joint'}, next >= 0
        ? `click: ${S.joint_names[next]} (${next + 1} of ${S.joint_names.length})`
        : 'all joints placed: Enter for the next image'));
    const list = el('ol', {class: 'joints'});
    S.joint_names.forEach((name, j) => {
      const li = el('li', {}, name);
      if (j === next) li.classList.add('now');
      else if (joints[j]) li.classList.add(joints[j][2] ? 'done' : 'invisible');
      list.append(li);
    });
    panel.append(list);
  } else {
    const n = (m.points || []).length;
    panel.append(el('div', {class: 'big', id: 'head-count'}, `${n} head${n === 1 ? '' : 's'}`),
                 el('div', {}, m.done ? 'done: submitted with the others'
                                      : 'click each head; Enter when all are placed'));
  }
  const box = el('div', {class: 'marker'}, stage, panel);
  return el('div', {}, strip, box);
}

function colour(j) {
  const name = S.joint_names[j] || '';
  return name.startsWith('right') ? '#e4572e' : name.startsWith('left') ? '#17bebb' : '#f4d35e';
}

function draw(svg, m, scale) {
  const r = 4 / scale;
  const at = (p) => [p[0] + 0.5, p[1] + 0.5];   // input pixels -> the image's coordinates
  if (S.task === 'pose') {
    const joints = m.joints || [];
    for (const [a, b] of S.skeleton) {
      const p = joints[a], q = joints[b];
      if (p && q && p[2] && q[2]) {
        const [x1, y1] = at(p), [x2, y2] = at(q);
        svg.append(el('svg:line', {x1, y1, x2, y2, stroke: colour(b), 'stroke-width': 1.5 / scale * 2}));
      }
    }
    joints.forEach((p, j) => {
      if (p && p[2]) {
        const [cx, cy] = at(p);
        svg.append(el('svg:circle', {cx, cy, r, fill: colour(j), stroke: '#000',
                                     'stroke-width': 0.5 / scale * 2}));
      }
    });
  } else {
    for (const p of m.points || []) {
      const [cx, cy] = at(p);
      svg.append(el('svg:circle', {cx, cy, r, fill: 'none', stroke: '#ff2d55',
                                   'stroke-width': 2 / scale}));
    }
  }
}

function place(x, y) {
  const item = editable();
  if (!item) return;
  const m = marks[item.index];
  m.joints = m.joints || [];
  if (m.joints.length >= S.joint_names.length) return;
  m.joints.push([x, y, 1]);
  changed(item.index);
}

function invisible() {
  const item = editable();
  if (!item) return;
  const m = marks[item.index];
  m.joints = m.joints || [];
  if (m.joints.length >= S.joint_names.length) return;
  m.joints.push([0, 0, 0]);
  changed(item.index);
}

function head(x, y, radius) {
  const item = editable();
  if (!item) return;
  const m = marks[item.index];
  m.points = m.points || [];
  const near = m.points.findIndex((p) => Math.hypot(p[0] - x, p[1] - y) <= radius);
  if (near >= 0) m.points.splice(near, 1); else m.points.push([x, y]);
  m.done = false;
  changed(item.index);
}

function undo() {
  const item = editable();
  if (!item) return;
  const m = marks[item.index] || {};
  // A cleared class is a mark of its own (not a deletion), so that it outweighs an older one
  // kept elsewhere; the model's class is not submitted for it until Enter confirms it.
  if (S.task === 'classification') {
    marks[item.index] = {cleared: true};
    changed(item.index);
    return;
  }
  const list = S.task === 'pose' ? m.joints : m.points;
  if (list && list.length) list.pop();
  m.done = false;
  changed(item.index);
}

function move(step) {
  focus = Math.max(0, Math.min(S.items.length - 1, focus + step));
  render();
  const card = document.querySelector('.card.focus');
  if (card) card.scrollIntoView({block: 'nearest'});
}

function columns() {
  const cards = document.querySelectorAll('.card');
  if (cards.length < 2) return 1;
  const top = cards[0].offsetTop;
  let n = 0;
  for (const c of cards) { if (c.offsetTop !== top) break; n += 1; }
  return n;
}

document.addEventListener('keydown', (e) => {
  if (!S || e.target.tagName === 'INPUT') return;
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); return; }
  if (!S.items.length || e.altKey || e.ctrlKey || e.metaKey) return;
  const item = current();
  if (S.task === 'classification') {
    const c = S.keys.indexOf(e.key.toLowerCase());
    if (c >= 0) { e.preventDefault(); choose(S.classes[c]); return; }
    if (e.key === 'Enter') {
      e.preventDefault();
      const chosen = (marks[item.index] || {}).label || item.predicted;
      if (chosen !== undefined) choose(chosen); else move(1);
      return;
    }
  } else if (e.key === 'Enter') {
    e.preventDefault();
    if (S.task === 'crowd' && editable()) { marks[item.index].done = true; changed(item.index); }
    move(1);
    return;
  } else if (S.task === 'pose' && e.key.toLowerCase() === 'i') {
    e.preventDefault(); invisible(); return;
  }
  const steps = {ArrowRight: 1, ArrowLeft: -1, n: 1, p: -1,
                 ArrowDown: S.task === 'classification' ? columns() : 1,
                 ArrowUp: S.task === 'classification' ? -columns() : -1};
  if (e.key in steps) { e.preventDefault(); move(steps[e.key]); return; }
  if (e.key === ' ' && S.task === 'classification') { e.preventDefault(); skip(); return; }
  if (e.key === 'Delete') { e.preventDefault(); setAside(); return; }
  if (e.key === 'Backspace' || e.key === 'z') { e.preventDefault(); undo(); }
});

function help() {
  const k = (key, what) => el('div', {}, el('kbd', {}, key), ` ${what}`);
  const h = $('help');
  h.replaceChildren();
  if (S.task === 'classification') {
    const keys = S.classes.map((n, c) => S.keys[c] ? `${S.keys[c]}=${n}` : null).filter((x) => x);
    h.append(el('div', {}, `Classes: ${keys.join(', ')}`),
             k('Enter', 'confirm the model\'s class'), k('Space', 'skip (asked again)'),
             k('Delete', 'set aside (no class fits: never asked again)'),
             k('Backspace', 'clear'), k('arrows', 'move'));
  } else if (S.task === 'pose') {
    h.append(el('div', {}, 'Click each joint in the order listed.'),
             k('i', 'the joint cannot be placed'), k('Backspace', 'undo the last joint'),
             k('Enter', 'next image'), k('← →', 'previous / next image'));
  } else {
    h.append(el('div', {}, 'Click each head; click a head again to remove it.'),
             k('Enter', 'this image is done'), k('Backspace', 'undo the last head'),
             k('← →', 'previous / next image'));
  }
  if (S.task !== 'classification') h.append(k('Delete', 'set aside (never asked again)'));
  h.append(k('Ctrl+Enter', 'submit the answers given'));
}

function curve() {
  const svg = $('curve');
  svg.replaceChildren();
  const rounds = (S.results || []).filter((r) => r.value !== null && r.value !== undefined);
  $('rounds').textContent = rounds.map((r) =>
      `round ${r.round}: ${r.labels} labels, ${r.metric} ${r.value.toFixed(4)}`).join('\n');
  $('rounds').style.whiteSpace = 'pre-line';
  if (!rounds.length) {
    svg.append(el('svg:text', {x: 10, y: 90, 'font-size': 12, fill: '#888'},
                  'no round scored yet'));
    return;
  }
  const W = 280, H = 180, pad = 32;
  const xs = rounds.map((r) => r.labels), ys = rounds.map((r) => r.value);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const X = (x) => pad + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (W - 2 * pad);
  const Y = (y) => H - pad - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * (H - 2 * pad);
  svg.append(el('svg:line', {x1: pad, y1: H - pad, x2: W - pad, y2: H - pad, stroke: '#999'}),
             el('svg:line', {x1: pad, y1: pad, x2: pad, y2: H - pad, stroke: '#999'}),
             el('svg:polyline', {points: rounds.map((r) => `${X(r.labels)},${Y(r.value)}`).join(' '),
                                 fill: 'none', stroke: '#2f6fde', 'stroke-width': 2}));
  for (const r of rounds) {
    svg.append(el('svg:circle', {cx: X(r.labels), cy: Y(r.value), r: 3, fill: '#2f6fde'}));
  }
  const t = (x, y, s, anchor) => el('svg:text', {x, y, 'font-size': 10, fill: '#555',
                                                 'text-anchor': anchor || 'start'}, s);
  svg.append(t(2, pad - 6, `${rounds[0].metric} ${y1.toFixed(3)}`),
             t(2, H - pad + 4, y0.toFixed(3)), t(pad, H - 8, `${x0} labels`),
             t(W - pad, H - 8, `${x1}`, 'end'));
}

$('submit').addEventListener('click', () => submit());
$('train').addEventListener('click', () => train());
window.l2r = {submit, state: () => S, marks: () => marks, load};
load();
