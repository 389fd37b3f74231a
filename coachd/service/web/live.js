// The live coaching page: draws what coachd pushes on /events (Server-Sent Events).
// Every fact (ranges, targets, words, bones) comes from the server; this file only draws.
"use strict";

const state = { bones: [], session: null, program: null, cadence: null, warm: false };
const $ = (id) => document.getElementById(id);
const now = () => performance.now() / 1000;
let sessionStartedAt = null; // local seconds
let programEndsAt = null;
let pose = null;

function zone(band, value) {
  if (!band || value === null || value === undefined) return "";
  const past = (limit) => (band.fault_above ? value > limit : value < limit);
  if (past(band.start)) return "fix";
  if (past(band.clear)) return "watch";
  return "good";
}

function showStatus(status) {
  const el = $("status");
  el.dataset.state = status.state;
  el.textContent = status.text;
}

function showCue(cue) {
  const el = $("cue");
  if (!cue) return;
  el.textContent = cue.text;
  el.dataset.kind = cue.kind;
  el.dataset.seq = String(cue.seq);
  el.classList.remove("fresh");
  void el.offsetWidth; // restart the flash
  el.classList.add("fresh");
}

function showCadence(cadence) {
  state.cadence = cadence;
  const el = $("cadence");
  const text = $("cadence-band");
  if (!cadence || cadence.spm === null) {
    el.textContent = "–";
    el.dataset.zone = "";
    text.textContent = "";
    return;
  }
  el.textContent = String(cadence.spm);
  if (cadence.target_band) {
    const [low, high] = cadence.target_band;
    el.dataset.zone = cadence.spm >= low ? "good" : "watch";
    text.textContent = `target ${low}–${high}`;
  } else if (cadence.band) {
    el.dataset.zone = zone(cadence.band, cadence.spm);
    const b = cadence.band;
    text.textContent = b.fault_above ? `good below ${Math.round(b.clear)}` : `good from ${Math.round(b.clear)}`;
  } else {
    el.dataset.zone = "";
    text.textContent = "";
  }
}

function rangeBar(band) {
  const [low, high] = band.scale;
  const span = high - low;
  const pct = (v) => Math.max(0, Math.min(100, ((v - low) / span) * 100));
  const bar = document.createElement("div");
  bar.className = "bar";
  const edges = [0, pct(Math.min(band.clear, band.start)), pct(Math.max(band.clear, band.start)), 100];
  const zones = band.fault_above ? ["good", "watch", "fix"] : ["fix", "watch", "good"];
  zones.forEach((name, i) => {
    const z = document.createElement("div");
    z.className = "zone " + name;
    z.style.width = `${edges[i + 1] - edges[i]}%`;
    bar.appendChild(z);
  });
  if (band.value !== null) {
    const marker = document.createElement("div");
    marker.className = "marker";
    marker.style.left = `${pct(band.value)}%`;
    bar.appendChild(marker);
  }
  return bar;
}

function showMetrics(metrics) {
  const box = $("metrics");
  box.replaceChildren();
  for (const band of metrics || []) {
    const row = document.createElement("div");
    row.className = "metric";
    row.dataset.metric = band.metric;
    row.dataset.zone = zone(band, band.value);
    const label = document.createElement("span");
    label.textContent = band.label;
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = band.text;
    row.append(label, value, rangeBar(band));
    box.appendChild(row);
  }
}

function showSession(session) {
  state.session = session;
  sessionStartedAt = session && session.active ? now() + session.started_s : null;
  showProgram(state.program);
}

const STEP_WORDS = {
  prepare: "Retro drill: get ready",
  drill: "Retro drill",
  between: "Next retro drill in",
};

function showProgram(program) {
  state.program = program;
  const el = $("program");
  el.dataset.step = program ? program.step : "";
  programEndsAt = program && program.ends_s !== null ? now() + program.ends_s : null;
  const active = state.session && state.session.active;
  if (!program) {
    if (active && state.session.program === "retro") el.textContent = "No more drills this session";
    else if (active && !state.warm) el.textContent = "Warm-up: learning how you run";
    else el.textContent = "";
  } else if (program.program === "cadence") {
    el.textContent = `Cadence block: ${Math.round(program.target_spm)} steps/min`;
  } else {
    el.textContent = STEP_WORDS[program.step] || program.step;
  }
  tick();
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function tick() {
  $("session-time").textContent = sessionStartedAt === null ? "–" : clock(now() - sessionStartedAt);
  const program = state.program;
  if (program && programEndsAt !== null && program.program === "retro") {
    const left = Math.max(0, Math.ceil(programEndsAt - now()));
    const words = STEP_WORDS[program.step] || program.step;
    $("program").textContent = program.step === "between" ? `${words} ${clock(left)}` : `${words}: ${left} s`;
  }
}

function drawSkeleton() {
  // The canvas fills its box at the screen's resolution; the body is placed where the camera
  // picture (object-fit: contain) would be, so the two line up with ui.show_video.
  const canvas = $("skeleton");
  const box = canvas.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(box.width * ratio);
  const height = Math.round(box.height * ratio);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!pose || !width || !height) return;
  const scale = Math.min(canvas.width / pose.aspect, canvas.height);
  const w = scale * pose.aspect;
  const h = scale;
  const x0 = (canvas.width - w) / 2;
  const y0 = (canvas.height - h) / 2;
  const at = (i) => [x0 + pose.points[i][0] * w, y0 + pose.points[i][1] * h, pose.points[i][2]];
  ctx.lineCap = "round";
  ctx.lineWidth = Math.max(4, h / 60);
  ctx.strokeStyle = "#58a6ff";
  for (const [a, b] of state.bones) {
    const pa = at(a);
    const pb = at(b);
    if (pa[2] < 0.5 || pb[2] < 0.5) continue;
    ctx.beginPath();
    ctx.moveTo(pa[0], pa[1]);
    ctx.lineTo(pb[0], pb[1]);
    ctx.stroke();
  }
  const nose = at(0);
  if (nose[2] >= 0.5) {
    ctx.fillStyle = "#58a6ff";
    ctx.beginPath();
    ctx.arc(nose[0], nose[1], Math.max(6, h / 40), 0, 2 * Math.PI);
    ctx.fill();
  }
}

function showSnapshot(snapshot) {
  state.bones = snapshot.bones || [];
  const video = $("video");
  video.hidden = !snapshot.show_video;
  if (snapshot.show_video && !video.src) video.src = "/video.mjpg";
  showStatus(snapshot.status || { state: "waiting", text: "Waiting for a runner" });
  if (snapshot.cue) showCue(snapshot.cue);
  state.program = snapshot.program || null;
  state.warm = Boolean(snapshot.warm);
  showSession(snapshot.session || null);
  showCadence(snapshot.cadence || null);
  showMetrics(snapshot.metrics || []);
  pose = snapshot.pose || null;
  drawSkeleton();
}

function connect() {
  const events = new EventSource("/events");
  const on = (name, show) => events.addEventListener(name, (e) => show(JSON.parse(e.data)));
  on("snapshot", showSnapshot);
  on("status", showStatus);
  on("cue", showCue);
  on("cadence", showCadence);
  on("metrics", showMetrics);
  on("session", showSession);
  on("program", showProgram);
  on("warm", (warm) => { state.warm = warm; showProgram(state.program); });
  on("pose", (p) => { pose = p; requestAnimationFrame(drawSkeleton); });
  // EventSource reconnects by itself (the server sets the delay); say so meanwhile.
  events.onerror = () => showStatus({ state: "disconnected", text: "coachd not answering: reconnecting…" });
}

async function stop() {
  const result = $("stop-result");
  result.textContent = "Stopping…";
  try {
    const response = await fetch("/stop", { method: "POST", headers: { "X-Coachd-Stop": "1" } });
    const body = await response.json();
    const words = { drill: "Drill stopped", session: "Session ended", nothing: "Nothing to stop" };
    result.textContent = words[body.stopped] || "Stopped";
  } catch (err) {
    result.textContent = "STOP did not reach coachd: step off the belt";
  }
}

$("stop").addEventListener("click", stop);
setInterval(tick, 250);
window.addEventListener("resize", drawSkeleton);
connect();
