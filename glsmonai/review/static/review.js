// glsmonai review: the viewer. Plain JavaScript and SVG, no build step. The server does the work
// (re-segmentation, files); this page draws its answers: the scan, the mask's contour, the keypoints as
// handles and their windows, and sends the reviewer's moves, undos and accepts.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const app = {
  list: [],          // the scans, as /api/scans gives them
  order: "doubt",    // the list's sort
  current: null,     // the open scan's name
  scan: null,        // its state, as the server gave it
  box: null,         // the SVG viewBox {x, y, w, h} in scan pixels
  busy: 0,           // requests in flight
  drag: null,        // a keypoint being dragged, or the view being panned
};

// ------------------------------------------------------------------------------------------ requests

async function api(method, path, body) {
  const init = {method, headers: {}};
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(path, init);
  let data = null;
  try { data = await answer.json(); } catch (err) { data = {error: answer.statusText}; }
  if (!answer.ok) throw new Error(data && data.error ? data.error : `${answer.status} ${answer.statusText}`);
  return data;
}

const scanPath = (name, tail = "") => `/api/scans/${encodeURIComponent(name)}${tail}`;

function status(text, error = false) {
  const element = $("status");
  element.textContent = text;
  element.classList.toggle("error", error);
}

async function work(label, task) {
  app.busy += 1;
  document.body.dataset.busy = "1";
  status(label);
  try {
    const result = await task();
    status("");
    return result;
  } catch (err) {
    status(err.message, true);
    return null;
  } finally {
    app.busy -= 1;
    if (!app.busy) document.body.dataset.busy = "0";
  }
}

// ---------------------------------------------------------------------------------------------- list

async function loadList() {
  const data = await api("GET", "/api/scans");
  app.list = data.scans;
  $("folder").textContent = data.folder;
  $("reviewer").textContent = `reviewer: ${data.reviewer}`;
  const p = data.progress;
  $("progress").textContent = `${p.reviewed} / ${p.total} reviewed (${p.accepted} accepted, ${p.corrected} corrected)`;
  renderList();
}

function sortedList() {
  const rows = app.list.slice();
  if (app.order === "name") rows.sort((a, b) => a.name.localeCompare(b.name));
  if (app.order === "dice") rows.sort((a, b) => (a.dice ?? 2) - (b.dice ?? 2) || a.name.localeCompare(b.name));
  return rows;  // "doubt": the server's order, worst first
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderList() {
  const body = $("list").tBodies[0];
  body.replaceChildren();
  for (const scan of sortedList()) {
    const row = body.insertRow();
    row.dataset.name = scan.name;
    row.classList.toggle("current", scan.name === app.current);
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = scan.name;
    label.title = scan.name;
    row.insertCell().append(label);
    const state = document.createElement("span");
    state.className = `state state-${scan.state.replace(" ", "-")}`;
    state.textContent = scan.state;
    row.insertCell().append(state);
    cell(row, scan.min_confidence === null ? "" : scan.min_confidence.toFixed(2), "num");
    cell(row, String(scan.unsure), "num");
    const pieces = scan.expected_components === null ? `${scan.components}` : `${scan.components} (${scan.expected_components})`;
    cell(row, pieces, "num");
    cell(row, scan.dice === null ? "" : scan.dice.toFixed(3), "num");
    row.addEventListener("click", () => openScan(scan.name));
  }
}

function step(offset) {
  const names = sortedList().map((s) => s.name);
  if (!names.length) return;
  const at = names.indexOf(app.current);
  const next = names[Math.min(names.length - 1, Math.max(0, (at < 0 ? 0 : at + offset)))];
  if (next !== app.current) openScan(next);
}

// ---------------------------------------------------------------------------------------------- scan

async function openScan(name) {
  app.current = name;
  renderList();
  const scan = await work(`opening ${name} ...`, () => api("GET", scanPath(name)));
  if (!scan || app.current !== name) return;
  const image = $("scan");
  image.setAttribute("width", scan.shape[1]);
  image.setAttribute("height", scan.shape[0]);
  image.setAttribute("href", scanPath(name, "/image.png"));
  show(scan);
  fit();
}

function show(scan) {
  app.scan = scan;
  document.body.dataset.version = String(scan.version);
  document.body.dataset.state = scan.state;
  draw();
  renderPanel();
  const entry = app.list.find((s) => s.name === scan.name);
  if (entry && entry.state !== scan.state) loadList();
  loadMeasures(scan);
}

function element(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.append(node);
  return node;
}

function unit() {
  // scan pixels per screen pixel at the current zoom
  const svg = $("view");
  return app.box ? app.box.w / Math.max(1, svg.clientWidth) : 1;
}

function draw() {
  const scan = app.scan;
  if (!scan) return;
  const contour = $("contour");
  contour.replaceChildren();
  for (const d of scan.contours) element("path", {d}, contour);
  const windows = $("windows");
  windows.replaceChildren();
  const models = $("model-points");
  models.replaceChildren();
  const handles = $("handles");
  handles.replaceChildren();
  const r = 7 * unit();
  scan.model_keypoints.forEach(([row, col], k) => {
    const moved = scan.keypoints[k] && scan.keypoints[k].source === "user";
    if (moved) element("circle", {cx: col + 0.5, cy: row + 0.5, r: r * 0.8, "data-k": k}, models);
  });
  for (const point of scan.keypoints) {
    if (scan.window && !point.unsure) {
      element("rect", {x: point.col + 0.5 - scan.window[1] / 2, y: point.row + 0.5 - scan.window[0] / 2,
        width: scan.window[1], height: scan.window[0], "data-k": point.k}, windows);
    }
    const handle = element("circle", {cx: point.col + 0.5, cy: point.row + 0.5, r, "data-k": point.k,
      class: `${point.source}${point.unsure ? " unsure" : ""}`}, handles);
    element("title", {}, handle).textContent = `keypoint ${point.k} (${point.source}): drag to move`;
    handle.addEventListener("pointerdown", (event) => startDrag(event, point.k));
    const label = element("text", {x: point.col + 0.5 + r * 1.2, y: point.row + 0.5 - r * 1.2, "font-size": 13 * unit()}, handles);
    label.textContent = String(point.k);
  }
}

function renderPanel() {
  const scan = app.scan;
  $("scan-name").textContent = scan.name;
  const state = $("state");
  state.textContent = scan.state;
  state.className = `state state-${scan.state.replace(" ", "-")}`;
  $("decided").textContent = scan.reviewer ? `by ${scan.reviewer}, ${scan.time}` : "";
  $("undo").disabled = !scan.can_undo;
  const notice = $("notice");
  notice.hidden = scan.matches_saved;
  notice.textContent = scan.matches_saved ? "" :
    "This model's prediction differs from the mask in the folder: review runs with other -m or options than predict did.";
  const body = $("keypoints").tBodies[0];
  body.replaceChildren();
  for (const point of scan.keypoints) {
    const row = body.insertRow();
    cell(row, String(point.k));
    cell(row, point.row.toFixed(1), "num");
    cell(row, point.col.toFixed(1), "num");
    cell(row, point.source + (point.unsure ? ", unsure" : ""));
    cell(row, point.confidence.toFixed(2), "num");
  }
  $("changed").textContent = scan.changed ? `changed: ${scan.changed}` : "";
  const info = $("mask-info").tBodies[0];
  info.replaceChildren();
  const pieces = scan.expected_components === null ? `${scan.components}` : `${scan.components} (expected ${scan.expected_components})`;
  for (const [name, value] of [["pieces", pieces], ["Dice", scan.dice === null ? "no reference" : scan.dice.toFixed(4)]]) {
    const row = info.insertRow();
    cell(row, name);
    cell(row, value, "num");
  }
}

async function loadMeasures(scan) {
  const note = $("measures-note");
  note.textContent = "measuring ...";
  let data;
  try {
    data = await api("GET", scanPath(scan.name, "/measures"));
  } catch (err) {
    note.textContent = err.message;
    return;
  }
  if (!app.scan || app.scan.name !== scan.name || data.version !== app.scan.version) return;  // a newer state came
  const body = $("measures").tBodies[0];
  body.replaceChildren();
  for (const [name, value] of Object.entries(data.measures)) {
    const row = body.insertRow();
    cell(row, name);
    cell(row, value === null ? "" : Number(value).toPrecision(4), "num");
  }
  note.textContent = data.note || `${data.task} measures of the mask as it is now`;
  document.body.dataset.measured = String(data.version);
}

// ------------------------------------------------------------------------------------------- actions

async function move(k, row, col) {
  const name = app.current;
  const scan = await work(`re-segmenting keypoint ${k} ...`, () => api("POST", scanPath(name, "/keypoints"), {k, row, col}));
  if (scan && scan.name === app.current) show(scan);
  else if (app.scan) draw();  // refused: the handle goes back
}

async function undo() {
  if (!app.current) return;
  const scan = await work("undoing ...", () => api("POST", scanPath(app.current, "/undo")));
  if (scan && scan.name === app.current) show(scan);
}

async function accept() {
  if (!app.current) return;
  const scan = await work("accepting ...", () => api("POST", scanPath(app.current, "/accept")));
  if (scan && scan.name === app.current) {
    show(scan);
    await loadList();
  }
}

// ----------------------------------------------------------------------------------- zoom, pan, drag

function setBox(box) {
  app.box = box;
  $("view").setAttribute("viewBox", `${box.x} ${box.y} ${box.w} ${box.h}`);
  draw();
}

function fit() {
  const svg = $("view");
  if (!app.scan || !svg.clientWidth || !svg.clientHeight) return;  // not laid out yet
  const [rows, cols] = app.scan.shape;
  const aspect = svg.clientWidth / Math.max(1, svg.clientHeight);
  let w = cols, h = rows;
  if (w / h < aspect) w = h * aspect; else h = w / aspect;
  setBox({x: (cols - w) / 2, y: (rows - h) / 2, w, h});
}

function toScan(event) {
  const svg = $("view");
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
  return {x: point.x, y: point.y};
}

function startDrag(event, k) {
  if (app.busy) return;
  event.stopPropagation();
  event.preventDefault();
  const handle = event.target;
  handle.setPointerCapture(event.pointerId);
  handle.classList.add("dragging");
  app.drag = {kind: "keypoint", k, handle, id: event.pointerId};
}

function dragTo(event) {
  const drag = app.drag;
  if (!drag) return;
  if (drag.kind === "pan") {
    const u = unit();
    setBox({...drag.box, x: drag.box.x - (event.clientX - drag.x) * u, y: drag.box.y - (event.clientY - drag.y) * u});
    return;
  }
  const at = toScan(event);
  drag.handle.setAttribute("cx", at.x);
  drag.handle.setAttribute("cy", at.y);
  const box = $("windows").querySelector(`rect[data-k="${drag.k}"]`);
  if (box && app.scan.window) {
    box.setAttribute("x", at.x - app.scan.window[1] / 2);
    box.setAttribute("y", at.y - app.scan.window[0] / 2);
  }
}

function endDrag(event) {
  const drag = app.drag;
  if (!drag) return;
  app.drag = null;
  $("view").classList.remove("panning");
  if (drag.kind !== "keypoint") return;
  const at = toScan(event);
  const [rows, cols] = app.scan.shape;
  // the scan's pixel frame: pixel [r, c] covers x in [c, c + 1), y in [r, r + 1); its centre is the keypoint [r, c]
  const row = Math.min(rows - 1, Math.max(0, at.y - 0.5));
  const col = Math.min(cols - 1, Math.max(0, at.x - 0.5));
  move(drag.k, Math.round(row * 100) / 100, Math.round(col * 100) / 100);
}

function startPan(event) {
  if (!app.box || app.drag) return;
  $("view").setPointerCapture(event.pointerId);
  $("view").classList.add("panning");
  app.drag = {kind: "pan", x: event.clientX, y: event.clientY, box: {...app.box}};
}

function zoom(event) {
  if (!app.box) return;
  event.preventDefault();
  const factor = Math.exp(event.deltaY * 0.0015);
  const at = toScan(event);
  const box = app.box;
  const w = Math.min(Math.max(box.w * factor, 8), 40 * Math.max(...app.scan.shape));
  const scale = w / box.w;
  setBox({x: at.x - (at.x - box.x) * scale, y: at.y - (at.y - box.y) * scale, w, h: box.h * scale});
}

// ------------------------------------------------------------------------------------------ keyboard

function onKey(event) {
  if (event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement) return;
  const key = event.key.toLowerCase();
  if ((event.ctrlKey || event.metaKey) && key === "z") {
    event.preventDefault();
    undo();
  } else if (event.ctrlKey || event.metaKey || event.altKey) {
    return;
  } else if (key === "n") {
    step(1);
  } else if (key === "p") {
    step(-1);
  } else if (key === "a") {
    accept();
  } else if (key === "0") {
    fit();
  }
}

// ---------------------------------------------------------------------------------------------- start

async function start() {
  const svg = $("view");
  svg.addEventListener("pointerdown", startPan);
  svg.addEventListener("pointermove", dragTo);
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  svg.addEventListener("wheel", zoom, {passive: false});
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", fit);
  $("prev").addEventListener("click", () => step(-1));
  $("next").addEventListener("click", () => step(1));
  $("accept").addEventListener("click", accept);
  $("undo").addEventListener("click", undo);
  $("fit").addEventListener("click", fit);
  $("sort").addEventListener("change", (event) => { app.order = event.target.value; renderList(); });
  const loaded = await work("loading the scans ...", loadList);
  if (loaded !== null && app.list.length) await openScan(sortedList()[0].name);
  document.body.dataset.ready = "1";
}

start();
