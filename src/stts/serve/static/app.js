// stts serve's page: upload a video to /v1/predict, show the top-5, a timeline of the classes and the video
// with the current label. Plain JS, no framework, nothing loaded from elsewhere.
"use strict";

const COLOURS = ["#2f6fde", "#e0663b", "#2e9e5b", "#a54bd6", "#d6a21e", "#1fa3a8", "#d6436e", "#6b7a2f", "#7a5230", "#4a5568"];
const $ = (id) => document.getElementById(id);
const state = { record: null, heat: null, rows: [], duration: 0, url: null, colour: new Map(), shown: -1 };

function token() {
  return sessionStorage.getItem("stts-token") || "";
}

function authHeaders() {
  return token() ? { Authorization: "Bearer " + token() } : {};
}

function setStatus(text, kind, progress) {
  const status = $("status");
  status.textContent = text;
  status.dataset.state = kind;
  const bar = $("progress");
  bar.hidden = progress === undefined;
  if (progress === null) bar.removeAttribute("value"); // indeterminate: the server is predicting
  else if (progress !== undefined) bar.value = progress;
}

async function loadModels() {
  const response = await fetch("/v1/models", { headers: authHeaders() });
  if (response.status === 401) {
    $("token-row").hidden = false;
    setStatus("Enter the server's token, then pick a video.", "idle");
    return;
  }
  const info = await response.json();
  const select = $("model");
  select.replaceChildren();
  for (const model of info.models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = `${model.name} (${model.classes.length} classes)`;
    select.append(option);
  }
  const limits = info.limits;
  $("limits").textContent = `Up to ${limits.max_upload_mb} MB and ${limits.max_duration} s of video.`;
}

function upload(file) {
  if (!file) return;
  const form = new FormData();
  form.append("video", file, file.name);
  if ($("model").value) form.append("model", $("model").value);
  form.append("topk", "5");
  const request = new XMLHttpRequest();
  const begin = performance.now();
  request.open("POST", "/v1/predict");
  for (const [key, value] of Object.entries(authHeaders())) request.setRequestHeader(key, value);
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) {
      const percent = Math.round((100 * event.loaded) / event.total);
      setStatus(`Uploading ${file.name}: ${percent} %`, "uploading", percent);
    }
  };
  request.upload.onload = () => setStatus(`Predicting ${file.name}...`, "predicting", null);
  request.onerror = () => setStatus("The server could not be reached.", "error");
  request.onload = () => {
    let body = null;
    try {
      body = JSON.parse(request.responseText);
    } catch (error) {
      body = { error: request.responseText.slice(0, 200) };
    }
    if (request.status !== 200) {
      if (request.status === 401) $("token-row").hidden = false;
      setStatus(`Error ${request.status}: ${body.error || "unexpected answer"}`, "error");
      return;
    }
    const seconds = ((performance.now() - begin) / 1000).toFixed(2);
    show(body, file);
    setStatus(`Done: ${body.windows.length} windows in ${seconds} s.`, "done");
  };
  setStatus(`Uploading ${file.name}...`, "uploading", 0);
  request.send(form);
}

// each class's mean probability over the windows covering time t (a class missing from a window's top-k counts 0)
function probabilitiesAt(t, windows) {
  const sums = new Map();
  let covering = 0;
  for (const w of windows) {
    if (t < w.start_time || t >= w.end_time) continue;
    covering += 1;
    for (const entry of w.topk) sums.set(entry.class, (sums.get(entry.class) || 0) + entry.probability);
  }
  for (const [name, sum] of sums) sums.set(name, sum / Math.max(covering, 1));
  return sums;
}

function best(probs) {
  let top = null;
  for (const [name, p] of probs) if (!top || p > top[1]) top = [name, p];
  return top;
}

function colourOf(name) {
  if (!state.colour.has(name)) state.colour.set(name, COLOURS[state.colour.size % COLOURS.length]);
  return state.colour.get(name);
}

function show(record, file) {
  state.record = record;
  state.colour = new Map();
  const windows = record.windows;
  state.duration = Math.max(...windows.map((w) => w.end_time), 1e-3);
  // rows: the video's top-k, then any class that is some window's first choice, at most 8
  const rows = record.topk.map((e) => e.class);
  for (const w of windows) if (!rows.includes(w.topk[0].class)) rows.push(w.topk[0].class);
  state.rows = rows.slice(0, 8);
  state.rows.forEach(colourOf);

  $("result").hidden = false;
  $("top1").textContent = record.top1;
  $("top1p").textContent = record.probability.toFixed(3);
  const list = $("topk");
  list.replaceChildren();
  for (const entry of record.topk) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.class;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(100 * entry.probability).toFixed(1)}%`;
    fill.style.background = colourOf(entry.class);
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = entry.probability.toFixed(3);
    item.append(name, bar, value);
    list.append(item);
  }
  $("summary").textContent = `${record.video}: ${windows.length} windows over ${state.duration.toFixed(1)} s.`;

  const canvas = $("timeline");
  canvas.height = 26 + state.rows.length * 20 + 24; // the strip, the rows, the seconds
  const columns = canvas.width - 130;
  state.heat = [];
  for (let x = 0; x < columns; x++) state.heat.push(probabilitiesAt(((x + 0.5) / columns) * state.duration, windows));
  state.shown = -1; // the next animation frame draws the timeline and the label
  drawTimeline(0);

  const video = $("video");
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(file);
  $("noplay").hidden = true;
  video.onerror = () => { $("noplay").hidden = false; };
  video.src = state.url;
  video.play().catch(() => {});
}

function drawTimeline(t) {
  const canvas = $("timeline");
  const ctx = canvas.getContext("2d");
  const left = 120, top = 26, rowHeight = 20, columns = state.heat.length;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  // the first-choice strip, then one row per class with its probability as opacity
  ctx.fillStyle = "#667085";
  ctx.fillText("first choice", 8, 12);
  state.heat.forEach((probs, x) => {
    const top1 = best(probs);
    if (!top1) return;
    ctx.fillStyle = colourOf(top1[0]);
    ctx.fillRect(left + x, 4, 1, 16);
  });
  state.rows.forEach((name, row) => {
    const y = top + row * rowHeight;
    ctx.fillStyle = "#1d2330";
    ctx.fillText(name.length > 16 ? name.slice(0, 15) + "…" : name, 8, y + rowHeight / 2);
    ctx.fillStyle = "#f0f2f5";
    ctx.fillRect(left, y + 2, columns, rowHeight - 4);
    ctx.fillStyle = colourOf(name);
    state.heat.forEach((probs, x) => {
      const p = probs.get(name) || 0;
      if (p <= 0) return;
      ctx.globalAlpha = Math.min(1, p);
      ctx.fillRect(left + x, y + 2, 1, rowHeight - 4);
    });
    ctx.globalAlpha = 1;
  });
  // seconds along the bottom and where the video is
  const axis = top + state.rows.length * rowHeight + 14;
  ctx.fillStyle = "#667085";
  const tick = niceStep(state.duration / 8);
  for (let s = 0; s <= state.duration + 1e-9; s += tick) {
    const x = left + (s / state.duration) * columns;
    ctx.fillRect(x, axis - 10, 1, 4);
    ctx.fillText(`${+s.toFixed(2)} s`, Math.min(x - 8, canvas.width - 40), axis);
  }
  const x = left + Math.min(t / state.duration, 1) * columns;
  ctx.fillStyle = "#b42318";
  ctx.fillRect(x - 1, 2, 2, axis - 14);
}

function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-3)));
  return [1, 2, 5, 10].map((m) => m * power).find((step) => step >= raw) || raw;
}

function follow() {
  const video = $("video");
  if (state.record && video.currentTime !== state.shown) {
    const t = (state.shown = video.currentTime);
    const top1 = best(probabilitiesAt(t, state.record.windows));
    $("label").textContent = top1 ? `${top1[0]} ${top1[1].toFixed(2)}` : "";
    drawTimeline(t);
  }
  requestAnimationFrame(follow);
}

function init() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => upload(event.target.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    upload(event.dataTransfer.files[0]);
  });
  $("token").addEventListener("change", (event) => {
    sessionStorage.setItem("stts-token", event.target.value.trim());
    $("token-row").hidden = true;
    loadModels().catch(() => setStatus("The server could not be reached.", "error"));
  });
  loadModels().catch(() => setStatus("The server could not be reached.", "error"));
  requestAnimationFrame(follow);
}

document.addEventListener("DOMContentLoaded", init);
