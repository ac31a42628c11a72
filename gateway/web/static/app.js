// moat-bms web page: live state over server-sent events, actions and setup through the JSON
// API (the same API documented in docs/web.md). Plain JavaScript, no build step, no CDN.
// Everything shown is set with textContent (never innerHTML): event messages and settings
// come from the gateway, and the page has a strict Content-Security-Policy.
"use strict";

(() => {
  const TOKEN_KEY = "moat-bms-token";
  const STALE_MS = 5000; // no update for this long: say so
  const RECONNECT_MS = 12000; // no update for this long: open a new stream
  const MAX_EVENT_ROWS = 500;
  const MAX_SAMPLES = 5000;

  const state = {
    token: localStorage.getItem(TOKEN_KEY) || "",
    unlocked: false,
    started: null, // the gateway's start time: a change means it restarted
    status: null,
    eventCount: 0,
    lastSeq: 0,
    hist: null,
    range: 21600,
    source: null,
    lastUpdate: 0,
    config: null,
    configInputs: [], // {field, input} of the editable settings shown
    nodeViews: new Map(),
    packViews: new Map(),
    drawnOnce: false,
    charts: [],
  };

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) el.append(c);
    return el;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    return el;
  }

  function setText(id, text) {
    const el = typeof id === "string" ? $(id) : id;
    if (el.textContent !== text) el.textContent = text;
  }

  function setBadge(el, text, kind) {
    setText(el, text);
    el.className = "badge " + kind;
  }

  const DASH = "–";
  const fmt = (v, d) => (v === null || v === undefined ? DASH : v.toFixed(d));
  const signed = (v, d) => (v === null || v === undefined ? DASH : (v > 0 ? "+" : "") + v.toFixed(d));
  const words = (s) => String(s).replaceAll("_", " ");

  function pad2(n) { return String(n).padStart(2, "0"); }

  // The gateway's clock is monotonic, started at Unix time on a real gateway (a simulator may
  // start at 0); status.wall_offset_s turns its times into the wall clock's for display.
  const wallOffset = () => (state.status && state.status.wall_offset_s) || 0;

  function timeText(t, seconds) {
    if (t > 1e9) {
      const d = new Date((t + wallOffset()) * 1000);
      const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
      return seconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
    }
    const s = Math.max(0, Math.floor(t));
    const hm = `T+${Math.floor(s / 3600)}:${pad2(Math.floor(s / 60) % 60)}`;
    return seconds ? `${hm}:${pad2(s % 60)}` : hm;
  }

  function eventTime(t) {
    if (t > 1e9 && state.status && state.status.time - t > 20 * 3600) {
      const d = new Date((t + wallOffset()) * 1000);
      return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${timeText(t, true)}`;
    }
    return timeText(t, true);
  }

  let toastTimer = 0;
  function toast(message, bad) {
    const el = $("toast");
    el.textContent = message;
    el.classList.toggle("bad", !!bad);
    el.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => el.classList.remove("show"), bad ? 7000 : 4000);
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    const init = { method, headers, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const error = new Error((data && data.error) || `${response.status} ${response.statusText}`);
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  // ---------------------------------------------------------------- token

  function setUnlocked(on) {
    state.unlocked = on;
    document.body.classList.toggle("unlocked", on);
    for (const b of document.querySelectorAll(".needs-token")) {
      b.disabled = !on;
      b.title = on ? "" : "read-only: unlock with the API token";
    }
    const u = $("unlock");
    u.textContent = on ? "Unlocked" : "Unlock";
    u.classList.toggle("unlocked", on);
  }

  async function checkToken() {
    if (!state.token) { setUnlocked(false); return null; }
    try {
      await api("GET", "/api/auth");
      setUnlocked(true);
      return null;
    } catch (e) {
      setUnlocked(false);
      return e.message;
    }
  }

  function openTokenDialog() {
    $("token-input").value = state.token;
    setText("token-error", "");
    $("token-dialog").showModal();
    $("token-input").focus();
  }

  async function saveToken(event) {
    event.preventDefault();
    state.token = $("token-input").value.trim();
    const problem = await checkToken();
    if (problem) {
      setText("token-error", problem);
      return;
    }
    localStorage.setItem(TOKEN_KEY, state.token);
    $("token-dialog").close();
    toast("Unlocked: actions and setup are enabled");
    reload();  // with web.reads_need_token the page could not read until now
  }

  function forgetToken() {
    state.token = "";
    localStorage.removeItem(TOKEN_KEY);
    setUnlocked(false);
    $("token-dialog").close();
    toast("Locked: read-only");
  }

  async function act(path, body, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return;
    try {
      const result = await api("POST", path, body);
      toast(result.message);
    } catch (e) {
      toast(e.message, true);
      if (e.status === 401 || e.status === 403) setUnlocked(false);
    }
  }

  // ---------------------------------------------------------------- status

  const PHASES = {
    bulk: "info", absorption: "info", float: "ok", full_charge: "user", stopped: "alarm",
  };
  const SOC_SOURCES = {
    none: "no battery data yet", estimate: "rough estimate (under load)", ocv: "from the rested voltage",
    full: "counted from full", empty: "counted from empty", user: "set by hand, counted since",
  };
  const KEEPALIVE = { ok: "ok", starting: "idle", missing: "alarm", off: "idle" };

  function renderStatus(s) {
    setText("soc-value", fmt(s.soc, 1));
    const bar = $("soc-bar");
    bar.style.width = `${Math.max(0, Math.min(100, s.soc || 0))}%`;
    bar.className = s.soc === null ? "" : s.soc < 15 ? "low" : s.soc < 35 ? "mid" : "";
    const source = SOC_SOURCES[s.soc_source] || s.soc_source;
    // An untrusted SoC says so, with its uncertainty and what the inverter gets meanwhile.
    setText("soc-source", s.soc_trusted ? `${source}, ±${fmt(s.soc_uncertainty, 1)}`
      : `not calibrated: ±${fmt(s.soc_uncertainty, 0)}, inverter sent ${fmt(s.soc_sent, 0)} % (${source})`);
    $("soc-value").classList.toggle("untrusted", !s.soc_trusted);
    setText("soh-value", fmt(s.soh, 0));
    setText("voltage-value", fmt(s.voltage, 2));
    setText("strings-value", `${s.strings_online} of ${s.strings_total} string${s.strings_total === 1 ? "" : "s"} online`);
    setText("current-value", signed(s.current, 1));
    setText("current-direction", s.current === null ? "no data"
      : s.current > 0.5 ? "charging" : s.current < -0.5 ? "discharging" : "idle");
    const kw = s.power_w !== null && Math.abs(s.power_w) >= 10000;
    setText("power-value", s.power_w === null ? DASH : kw ? signed(s.power_w / 1000, 2) : signed(s.power_w, 0));
    setText("power-unit", kw ? "kW" : "W");
    setText("capacity-value", fmt(s.capacity_ah, 0));

    setBadge($("phase-value"), s.phase ? words(s.phase) : DASH, PHASES[s.phase] || "idle");
    const notes = s.notes.length ? s.notes.join("; ") : s.valid ? "nothing limits the battery" : "no valid battery data";
    setText("phase-notes", notes);
    $("phase-notes").title = notes;

    const c = s.cells;
    setText("cell-min", fmt(c.min, 3));
    setText("cell-max", fmt(c.max, 3));
    setText("cell-min-at", c.min_at ? `node ${c.min_at.node} #${c.min_at.cell}` : "");
    setText("cell-max-at", c.max_at ? `node ${c.max_at.node} #${c.max_at.cell}` : "");
    setText("cell-spread", c.spread === null ? DASH : (c.spread * 1000).toFixed(0));
    setText("temp-min", fmt(s.temperature.min, 1));
    setText("temp-max", fmt(s.temperature.max, 1));

    const sent = s.limits.sent || {};
    setText("limit-cvl", fmt(sent.cvl, 1));
    setText("limit-ccl", fmt(sent.ccl, 1));
    setText("limit-dcl", fmt(sent.dcl, 1));
    setText("limit-dvl", fmt(sent.dvl, 1));

    setText("inverter-profile", s.inverter.profile);
    setBadge($("inverter-keepalive"), s.inverter.keepalive, KEEPALIVE[s.inverter.keepalive] || "idle");
    const d = s.limits.decided;
    for (const [id, on] of [["charge-enable", d && d.charge_enable], ["discharge-enable", d && d.discharge_enable]]) {
      setText(id, d ? (on ? "allowed" : "stopped") : DASH);
      $(id).style.color = d ? (on ? "var(--ok)" : "var(--alarm)") : "";
    }
    const outputs = s.outputs || [];
    setText("outputs", outputs.length ? outputs.map((o) => `${o.name}: ${o.status}`).join("; ") : "none");
    renderAlarms(s.alarms);
  }

  function renderAlarms(alarms) {
    const box = $("alarms");
    const key = JSON.stringify(alarms);
    if (box.dataset.key === key) return;
    box.dataset.key = key;
    box.replaceChildren();
    if (!alarms.length) {
      box.append(h("span", { class: "none", text: "No alarms" }));
      return;
    }
    for (const a of alarms) {
      box.append(h("span", {
        class: `chip ${a.severity === "alarm" ? "alarm" : "warn"}`,
        text: `${words(a.alarm)} · ${a.severity}`,
      }));
    }
  }

  // ---------------------------------------------------------------- nodes

  const NODE_STATES = {
    active: ["active", "ok"], standby: ["standby", "idle"], init: ["starting", "idle"],
    tripped: ["tripped", "alarm"], config_error: ["config error", "alarm"],
  };
  const RELAYS = { closed: ["relay closed", "ok"], open: ["relay open", "idle"], mismatch: ["relay mismatch", "alarm"] };
  const LEVELS = { fault: "alarm", warning: "warn", info: "info" };

  function nodeView(n) {
    const id = n.node;
    const view = { cells: [], count: n.cell_count };
    const tokenButton = (text, cls, onclick) => h("button", {
      type: "button", class: `btn small needs-token ${cls}`, text, onclick,
      disabled: !state.unlocked, title: state.unlocked ? null : "read-only: unlock with the API token",
    });
    view.state = h("span", { class: "badge" });
    view.relay = h("span", { class: "badge" });
    view.voltage = h("b", { text: DASH });
    view.current = h("b", { text: DASH });
    view.age = h("span");
    view.bars = h("div", { class: "cells", role: "img" });
    const nums = h("div", { class: "cellnums" });
    for (let k = 0; k < n.cell_count; k++) {
      const fill = h("div", { class: "fill" });
      const mark = h("span", { class: "mark" });
      const cell = h("div", { class: "cell" }, mark, fill);
      view.cells.push({ cell, fill, mark });
      view.bars.append(cell);
      nums.append(h("span", { text: n.cell_count <= 24 || (k + 1) % 4 === 0 ? String(k + 1) : "" }));
    }
    view.extremes = h("div", { class: "extremes" });
    view.temps = h("div", { class: "temps" });
    view.faults = h("div", { class: "faults" });
    view.reset = tokenButton("Reset fault", "", () => act("/api/actions/reset", { node: id }));
    view.card = h("article", { class: "card node", id: `node-${id}` },
      h("div", { class: "head" },
        h("h3", { text: `Node ${id}` }),
        h("span", { class: "where", text: n.string === null ? "" : `string ${n.string}` }),
        h("span", { class: "badges" }, view.state, view.relay)),
      h("div", { class: "figures" },
        h("div", {}, view.voltage, h("span", { text: " V" })),
        h("div", {}, view.current, h("span", { text: " A" })),
        view.age),
      view.bars, nums, view.extremes, view.temps, view.faults,
      h("div", { class: "node-actions" },
        tokenButton("Close relay", "", () => act("/api/actions/relay", { node: id, action: "close" })),
        tokenButton("Open relay", "danger", () => act("/api/actions/relay", { node: id, action: "open" },
          `Open the relay of node ${id}? Its string stops carrying current.`)),
        view.reset));
    return view;
  }

  function renderNodes(nodes, s) {
    const list = $("node-list");
    // One scale for every node, so that bars compare across the battery.
    let lo = s.cells.min, hi = s.cells.max;
    if (lo === null || hi === null) { lo = s.chemistry.min_cell_v; hi = s.chemistry.charge_target_v; }
    const margin = Math.max(0.01, (hi - lo) * 0.3);
    lo -= margin; hi += margin;
    for (const n of nodes) {
      let view = state.nodeViews.get(n.node);
      if (!view || view.count !== n.cell_count) {
        const fresh = nodeView(n);
        if (view) view.card.replaceWith(fresh.card); else list.append(fresh.card);
        state.nodeViews.set(n.node, fresh);
        view = fresh;
      }
      updateNode(view, n, s, lo, hi);
    }
  }

  function updateNode(view, n, s, lo, hi) {
    view.card.classList.toggle("missing", !n.present);
    const [stateText, stateKind] = n.present ? NODE_STATES[n.state] || [n.state, "idle"] : ["no data", "alarm"];
    setBadge(view.state, stateText, stateKind);
    const [relayText, relayKind] = RELAYS[n.relay] || [n.relay, "idle"];
    setBadge(view.relay, relayText, relayKind);
    setText(view.voltage, fmt(n.voltage, 2));
    setText(view.current, signed(n.current, 1));
    setText(view.age, n.present ? "" : n.age_s === null ? "never seen" : `silent for ${n.age_s.toFixed(0)} s`);

    const minNo = n.min_cell ? n.min_cell.cell : 0;
    const maxNo = n.max_cell ? n.max_cell.cell : 0;
    const bleeding = new Set(n.bleeding);
    const chem = s.chemistry;
    n.cells.forEach((v, k) => {
      const c = view.cells[k];
      const no = k + 1;
      const pct = v === null ? 0 : 4 + 96 * Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
      c.fill.style.height = `${pct.toFixed(1)}%`;
      c.cell.className = "cell"
        + (v === null ? " unknown" : "")
        + (no === minNo ? " min" : "")
        + (no === maxNo ? " max" : "")
        + (bleeding.has(no) ? " bleed" : "")
        + (v !== null && v < chem.min_cell_v ? " low" : "")
        + (v !== null && v > chem.charge_target_v ? " high" : "");
      setText(c.mark, no === maxNo ? "▲" : no === minNo ? "▼" : "");
      c.cell.title = `cell ${no}: ${v === null ? "no data" : v.toFixed(3) + " V"}${bleeding.has(no) ? ", balancing" : ""}`;
    });
    view.bars.setAttribute("aria-label", `node ${n.node} cell voltages`);

    const parts = [];
    if (n.min_cell && n.max_cell && n.min_cell.voltage !== null && n.max_cell.voltage !== null) {
      parts.push(`▼ ${n.min_cell.voltage.toFixed(3)} V #${minNo}`, `▲ ${n.max_cell.voltage.toFixed(3)} V #${maxNo}`,
        `Δ ${((n.max_cell.voltage - n.min_cell.voltage) * 1000).toFixed(0)} mV`);
    }
    parts.push(n.bleeding.length ? `balancing ${n.bleeding.map((c) => "#" + c).join(" ")}` : "not balancing");
    setText(view.extremes, parts.join(" · "));

    const temps = n.temperatures.map((t, i) => `T${i + 1} ${t === null ? DASH : t.toFixed(1)} °C`);
    if (n.balancer_temperature !== null) temps.push(`balancer ${n.balancer_temperature.toFixed(1)} °C`);
    const tempKey = temps.join("|");
    if (view.temps.dataset.key !== tempKey) {
      view.temps.dataset.key = tempKey;
      view.temps.replaceChildren(...temps.map((t) => h("span", { text: t })));
    }

    const faultKey = JSON.stringify(n.faults);
    if (view.faults.dataset.key !== faultKey) {
      view.faults.dataset.key = faultKey;
      view.faults.replaceChildren(...(n.faults.length
        ? n.faults.map((f) => h("span", { class: `badge ${LEVELS[f.level]}`, text: `${f.level}: ${f.kind}` }))
        : [h("span", { class: "badge ok", text: "no faults" })]));
    }
    view.reset.classList.toggle("pulse", n.trip_cleared);
  }

  // ---------------------------------------------------------------- commercial packs

  // A pack with its own BMS (status.packs, docs/sources.md): drawn like a node, with its BMS's
  // switches instead of a relay and its own alarm names; the gateway's actions go through
  // the relay policy, so the card has no buttons.
  const SWITCH = (name, on) => on === null ? [`${name} ?`, "idle"] : on ? [`${name} on`, "ok"] : [`${name} off`, "alarm"];

  function packView(p) {
    const view = { cells: [], count: p.cells.length };
    view.state = h("span", { class: "badge" });
    view.charge = h("span", { class: "badge" });
    view.discharge = h("span", { class: "badge" });
    view.voltage = h("b", { text: DASH });
    view.current = h("b", { text: DASH });
    view.soc = h("b", { text: DASH });
    view.age = h("span");
    view.bars = h("div", { class: "cells", role: "img" });
    for (let k = 0; k < view.count; k++) {
      const fill = h("div", { class: "fill" });
      const cell = h("div", { class: "cell" }, h("span", { class: "mark" }), fill);
      view.cells.push({ cell, fill });
      view.bars.append(cell);
    }
    view.temps = h("div", { class: "temps" });
    view.faults = h("div", { class: "faults" });
    view.error = h("div", { class: "extremes" });
    view.card = h("article", { class: "card node pack", id: `pack-${p.pack}` },
      h("div", { class: "head" },
        h("h3", { text: `Pack ${p.pack}` }),
        h("span", { class: "where", text: p.source }),
        h("span", { class: "badges" }, view.state, view.charge, view.discharge)),
      h("div", { class: "figures" },
        h("div", {}, view.voltage, h("span", { text: " V" })),
        h("div", {}, view.current, h("span", { text: " A" })),
        h("div", {}, view.soc, h("span", { text: " %" })),
        view.age),
      view.bars, view.temps, view.faults, view.error);
    return view;
  }

  function renderPacks(packs, s) {
    const list = $("node-list");
    let lo = s.cells.min, hi = s.cells.max;
    if (lo === null || hi === null) { lo = s.chemistry.min_cell_v; hi = s.chemistry.charge_target_v; }
    const margin = Math.max(0.01, (hi - lo) * 0.3);
    lo -= margin; hi += margin;
    for (const p of packs || []) {
      let view = state.packViews.get(p.pack);
      if (!view || view.count !== p.cells.length) {
        const fresh = packView(p);
        if (view) view.card.replaceWith(fresh.card); else list.append(fresh.card);
        state.packViews.set(p.pack, fresh);
        view = fresh;
      }
      updatePack(view, p, lo, hi);
    }
  }

  function updatePack(view, p, lo, hi) {
    view.card.classList.toggle("missing", !p.present);
    const [stateText, stateKind] = p.present ? NODE_STATES[p.state] || [p.state, "idle"] : ["no data", "alarm"];
    setBadge(view.state, stateText, stateKind);
    setBadge(view.charge, ...SWITCH("charge", p.charge_on));
    setBadge(view.discharge, ...SWITCH("discharge", p.discharge_on));
    setText(view.voltage, fmt(p.voltage, 2));
    setText(view.current, signed(p.current, 1));
    setText(view.soc, fmt(p.soc, 0));
    setText(view.age, p.present ? "" : p.age_s === null ? "never read" : `no reading for ${p.age_s.toFixed(0)} s`);
    p.cells.forEach((v, k) => {
      const c = view.cells[k];
      const pct = v === null ? 0 : 4 + 96 * Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
      c.fill.style.height = `${pct.toFixed(1)}%`;
      c.cell.className = "cell" + (v === null ? " unknown" : "");
      c.cell.title = `cell ${k + 1}: ${v === null ? "no data" : v.toFixed(3) + " V"}`;
    });
    view.bars.setAttribute("aria-label", `pack ${p.pack} cell voltages`);
    const temps = p.temperatures.map((t, i) => `T${i + 1} ${t === null ? DASH : t.toFixed(1)} °C`);
    const tempKey = temps.join("|");
    if (view.temps.dataset.key !== tempKey) {
      view.temps.dataset.key = tempKey;
      view.temps.replaceChildren(...temps.map((t) => h("span", { text: t })));
    }
    const faultKey = JSON.stringify([p.faults, p.alarms]);
    if (view.faults.dataset.key !== faultKey) {
      view.faults.dataset.key = faultKey;
      const badges = [
        ...p.faults.map((f) => h("span", { class: `badge ${LEVELS[f.level]}`, text: `${f.level}: ${f.kind}` })),
        ...p.alarms.map((a) => h("span", { class: "badge warn", text: `BMS: ${a}` })),
      ];
      view.faults.replaceChildren(...(badges.length ? badges : [h("span", { class: "badge ok", text: "no alarms" })]));
    }
    setText(view.error, p.last_error && !p.present ? p.last_error : p.errors ? `${p.errors} failed readings` : "");
  }

  // ---------------------------------------------------------------- events

  const KINDS = {
    start: ["idle", "start"], phase: ["info", "phase"], node_tripped: ["alarm", "trip"],
    node_reset: ["ok", "reset"], node_missing: ["alarm", "comm loss"], node_back: ["ok", "node back"],
    relay: ["info", "relay"], alarm: ["warn", "alarm"], alarm_cleared: ["ok", "cleared"],
    inverter_missing: ["alarm", "inverter missing"], inverter_back: ["ok", "inverter back"],
    user: ["user", "action"], persist: ["warn", "storage"],
  };

  function addEvents(events) {
    const body = $("event-rows");
    for (const e of events) {
      if (e.seq <= state.lastSeq) continue;
      state.lastSeq = e.seq;
      let [kind, label] = KINDS[e.kind] || ["idle", e.kind];
      if (e.kind === "alarm" && e.message.includes("(alarm)")) kind = "alarm";
      body.prepend(h("tr", { "data-seq": e.seq },
        h("td", { text: eventTime(e.time) }),
        h("td", {}, h("span", { class: `badge ${kind}`, text: label })),
        h("td", { text: e.node === null ? "" : String(e.node) }),
        h("td", { text: e.message })));
    }
    while (body.rows.length > MAX_EVENT_ROWS) body.lastChild.remove();
    $("events-empty").hidden = body.rows.length > 0;
  }

  // ---------------------------------------------------------------- history and charts

  function setHistory(columns) {
    state.hist = columns;
  }

  function appendHistory(columns) {
    if (!state.hist) { state.hist = columns; return columns.time.length > 0; }
    const last = state.hist.time.length ? state.hist.time[state.hist.time.length - 1] : -Infinity;
    let added = 0;
    columns.time.forEach((t, i) => {
      if (t <= last) return; // a reconnected stream may repeat samples
      for (const key of Object.keys(state.hist)) state.hist[key].push(columns[key][i]);
      added++;
    });
    const extra = state.hist.time.length - MAX_SAMPLES;
    if (extra > 0) for (const key of Object.keys(state.hist)) state.hist[key].splice(0, extra);
    return added > 0;
  }

  const CHARTS = [
    { id: "chart-voltage", title: "Voltage", unit: "V", digits: 2, series: [
      { key: "voltage", label: "battery", color: "var(--accent)" },
      { key: "cvl", label: "CVL", color: "#d97706", dash: true }] },
    { id: "chart-current", title: "Current", unit: "A", digits: 1, zero: true, series: [
      { key: "current", label: "battery", color: "var(--accent)" },
      { key: "ccl", label: "CCL", color: "var(--ok)", dash: true },
      { key: "dcl", label: "−DCL", color: "var(--alarm)", dash: true, negate: true }] },
    { id: "chart-soc", title: "State of charge", unit: "%", digits: 1, min: 0, max: 100, series: [
      { key: "soc", label: "SoC", color: "var(--ok)" }] },
    { id: "chart-cells", title: "Cell voltage", unit: "V", digits: 3, series: [
      { key: "max_cell", label: "highest", color: "var(--bar-max)" },
      { key: "min_cell", label: "lowest", color: "var(--bar-min)" }] },
    { id: "chart-temp", title: "Highest temperature", unit: "°C", digits: 1, series: [
      { key: "max_temp", label: "cells", color: "#d97706" }] },
  ];

  function niceStep(span, count) {
    const raw = span / count;
    const mag = 10 ** Math.floor(Math.log10(raw));
    for (const f of [1, 2, 2.5, 5, 10]) if (raw <= f * mag) return f * mag;
    return 10 * mag;
  }

  function buildChart(def) {
    const fig = $(def.id);
    const keys = h("div", { class: "keys" });
    const values = def.series.map((s) => {
      const value = h("b", { text: DASH });
      const swatch = h("i");
      swatch.style.background = s.color;
      keys.append(h("span", {}, swatch, `${s.label} `, value));
      return value;
    });
    const root = svg("svg", { role: "img", "aria-label": `${def.title} chart` });
    fig.replaceChildren(h("div", { class: "chart-head" }, h("h3", { text: `${def.title} (${def.unit})` }), keys), root);
    const chart = { def, root, values, hover: null };
    root.addEventListener("mousemove", (e) => {
      const box = root.getBoundingClientRect();
      chart.hover = e.clientX - box.left;
      drawChart(chart);
    });
    root.addEventListener("mouseleave", () => { chart.hover = null; drawChart(chart); });
    return chart;
  }

  function drawChart(chart) {
    const { def, root } = chart;
    const width = Math.max(200, root.clientWidth || 400);
    const height = 170;
    const m = { l: 46, r: 10, t: 8, b: 20 };
    root.setAttribute("viewBox", `0 0 ${width} ${height}`);
    root.replaceChildren();
    const hist = state.hist;
    const now = state.status ? state.status.time : hist && hist.time.length ? hist.time[hist.time.length - 1] : 0;
    const t0 = now - state.range;
    const idx = [];
    if (hist) hist.time.forEach((t, i) => { if (t >= t0 && t <= now) idx.push(i); });
    const value = (s, i) => {
      const v = hist[s.key][i];
      return v === null || v === undefined ? null : s.negate ? -v : v;
    };
    let lo = Infinity, hi = -Infinity;
    for (const s of def.series) for (const i of idx) {
      const v = value(s, i);
      if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    }
    if (def.zero && lo !== Infinity) { lo = Math.min(lo, 0); hi = Math.max(hi, 0); }
    if (def.min !== undefined) { lo = def.min; hi = def.max; }
    if (lo === Infinity) {
      root.append(Object.assign(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "nodata" }),
        { textContent: "no data yet" }));
      chart.values.forEach((v) => setText(v, DASH));
      return;
    }
    if (hi - lo < 1e-9) { const d = Math.max(Math.abs(hi) * 0.01, 0.01); lo -= d; hi += d; }
    const step = niceStep(hi - lo, 4);
    if (def.min === undefined) { lo = Math.floor(lo / step) * step; hi = Math.ceil(hi / step) * step; }
    const x = (t) => m.l + ((t - t0) / state.range) * (width - m.l - m.r);
    const y = (v) => height - m.b - ((v - lo) / (hi - lo)) * (height - m.t - m.b);

    const grid = svg("g", { class: "grid" });
    const axis = svg("g", { class: "axis" });
    const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    for (let v = lo; v <= hi + step / 2; v += step) {
      grid.append(svg("line", { x1: m.l, x2: width - m.r, y1: y(v), y2: y(v) }));
      axis.append(Object.assign(svg("text", { x: m.l - 6, y: y(v) + 3.5, "text-anchor": "end" }),
        { textContent: v.toFixed(decimals) }));
    }
    const tStep = [300, 600, 900, 1800, 3600, 7200].find((s) => state.range / s <= 6) || 7200;
    for (let t = Math.ceil(t0 / tStep) * tStep; t <= now; t += tStep) {
      grid.append(svg("line", { x1: x(t), x2: x(t), y1: m.t, y2: height - m.b }));
      axis.append(Object.assign(svg("text", { x: x(t), y: height - 5, "text-anchor": "middle" }),
        { textContent: timeText(t, false) }));
    }
    root.append(grid, axis);

    const gap = 3 * ((hist.time[1] - hist.time[0]) || 10);
    for (const s of def.series) {
      let d = "";
      let prev = null;
      for (const i of idx) {
        const v = value(s, i);
        if (v === null) { prev = null; continue; }
        const t = hist.time[i];
        d += `${prev === null || t - prev > gap ? "M" : "L"}${x(t).toFixed(1)} ${y(v).toFixed(1)}`;
        prev = t;
      }
      const path = svg("path", { d, class: `series${s.dash ? " dash" : ""}` });
      path.style.stroke = s.color;
      root.append(path);
    }

    // Values at the cursor, or the latest.
    let at = idx[idx.length - 1];
    if (chart.hover !== null && idx.length) {
      const t = t0 + ((chart.hover - m.l) / (width - m.l - m.r)) * state.range;
      at = idx.reduce((best, i) => (Math.abs(hist.time[i] - t) < Math.abs(hist.time[best] - t) ? i : best), idx[0]);
      const cursor = svg("g", { class: "cursor" });
      cursor.append(svg("line", { x1: x(hist.time[at]), x2: x(hist.time[at]), y1: m.t, y2: height - m.b }));
      root.append(cursor);
    }
    def.series.forEach((s, k) => {
      const v = at === undefined ? null : value(s, at);
      setText(chart.values[k], `${fmt(v, def.digits)} ${def.unit}`);
    });
  }

  function drawCharts() {
    for (const chart of state.charts) drawChart(chart);
  }

  // ---------------------------------------------------------------- setup

  function fieldInput(f) {
    const common = { "data-key": f.key, id: `cfg-${f.key}`, "aria-label": f.key };
    const v = f.value;
    if (f.kind === "bool") {
      const input = h("input", { ...common, type: "checkbox" });
      input.checked = !!v;
      return input;
    }
    if (f.kind === "enum") {
      const select = h("select", common, ...f.choices.map((c) => h("option", { value: c, text: c })));
      select.value = v;
      return select;
    }
    if (f.kind === "int" || f.kind === "float") {
      const b = f.bounds;
      return h("input", {
        ...common, type: "number", inputmode: "decimal", value: v === null ? "" : v,
        step: f.kind === "int" ? 1 : "any", min: b.ge ?? b.gt, max: b.le ?? b.lt,
        placeholder: f.optional ? "default" : null,
      });
    }
    if (f.kind === "str") {
      return h("input", { ...common, type: "text", value: v === null ? "" : v, placeholder: f.optional ? "default" : null });
    }
    return h("textarea", { ...common, rows: 1, spellcheck: "false", text: JSON.stringify(v) });
  }

  function readInput(f, input) {
    if (f.kind === "bool") return input.checked;
    if (f.kind === "enum") return input.value;
    const text = input.value.trim();
    if (text === "" && f.kind !== "json") {
      if (f.optional) return null;
      if (f.kind === "str") return "";
      throw new Error(`${f.key}: a value is needed`);
    }
    if (f.kind === "int") {
      if (!/^-?\d+$/.test(text)) throw new Error(`${f.key}: a whole number is needed`);
      return Number(text);
    }
    if (f.kind === "float") {
      const n = Number(text);
      if (!Number.isFinite(n)) throw new Error(`${f.key}: a number is needed`);
      return n;
    }
    if (f.kind === "str") return text;
    try { return JSON.parse(text || "null"); } catch (_) { throw new Error(`${f.key}: not valid JSON`); }
  }

  function renderConfig(cfg) {
    state.config = cfg;
    state.configInputs = [];
    const canSave = !!cfg.path;
    setText("config-path", cfg.path ? `file: ${cfg.path}` : "running on defaults: no configuration file");
    const tokenFile = cfg.running.web && cfg.running.web.token_file;
    if (tokenFile) setText("token-file", tokenFile);
    const banner = $("config-banner");
    banner.className = "banner";
    if (cfg.file_error) {
      banner.hidden = false;
      banner.textContent = `The configuration file has a problem: ${cfg.file_error}`;
    } else if (cfg.pending_restart.length) {
      banner.hidden = false;
      banner.textContent = `Saved in the file but not in force yet: restart the gateway to apply ${cfg.pending_restart.join(", ")}.`;
    } else if (!canSave) {
      banner.hidden = false;
      banner.textContent = "The gateway runs on defaults: start it with --config FILE to edit settings here.";
    } else {
      banner.hidden = true;
    }
    const pending = new Set(cfg.pending_restart);
    const sections = new Map();
    for (const f of cfg.fields) {
      if (!sections.has(f.section)) sections.set(f.section, []);
      sections.get(f.section).push(f);
    }
    const open = new Set([...document.querySelectorAll("#config-sections details[open]")].map((d) => d.dataset.section));
    const out = [];
    for (const [section, fields] of sections) {
      const editable = canSave && fields[0].editable;
      const details = h("details", { "data-section": section, open: open.has(section) },
        h("summary", {}, section, h("small", { text: editable ? "" : "read-only here: edit the file" })));
      for (const f of fields) {
        const name = f.key.slice(section.length + 1);
        let val;
        if (editable && f.editable) {
          val = fieldInput(f);
          state.configInputs.push({ field: f, input: val });
          val.addEventListener("input", () => markChanged(f, val));
          val.addEventListener("change", () => markChanged(f, val));
        } else {
          val = h("span", { class: "ro", text: JSON.stringify(f.value) });
        }
        details.append(h("div", { class: `field${pending.has(f.key) ? " pending" : ""}`, "data-field": f.key },
          h("div", { class: "name", text: name, title: f.key }),
          h("div", { class: "desc", text: f.description + (f.default === null ? "" : ` (default ${JSON.stringify(f.default)})`) }),
          h("div", { class: "val" }, val)));
      }
      out.push(details);
    }
    $("config-sections").replaceChildren(...out);
    $("config-errors").replaceChildren();
    $("config-save").hidden = !canSave;
    $("config-reset").hidden = !canSave;
  }

  function markChanged(f, input) {
    let changed;
    try { changed = JSON.stringify(readInput(f, input)) !== JSON.stringify(f.value); } catch (_) { changed = true; }
    input.closest(".field").classList.toggle("changed", changed);
  }

  async function saveConfig(event) {
    event.preventDefault();
    const changes = {};
    const problems = [];
    for (const { field, input } of state.configInputs) {
      try {
        const v = readInput(field, input);
        if (JSON.stringify(v) !== JSON.stringify(field.value)) changes[field.key] = v;
      } catch (e) {
        problems.push(e.message);
      }
    }
    if (!problems.length && !Object.keys(changes).length) problems.push("nothing changed");
    if (problems.length) { showConfigProblems(problems); return; }
    try {
      const result = await api("PATCH", "/api/config", changes);
      renderConfig(result);
      toast(`Saved ${result.saved.changed.length} setting(s) to ${result.saved.path}; restart the gateway to apply`);
    } catch (e) {
      showConfigProblems((e.data && e.data.problems) || [e.message]);
    }
  }

  function showConfigProblems(problems) {
    $("config-errors").replaceChildren(...problems.map((p) => h("li", { text: p })));
    for (const row of document.querySelectorAll("#config-sections .field")) {
      const key = row.dataset.field;
      row.classList.toggle("bad", problems.some((p) => p.startsWith(key + ":") || p.startsWith(key + ".")));
    }
    const first = document.querySelector("#config-sections .field.bad");
    if (first) { first.closest("details").open = true; first.scrollIntoView({ block: "center" }); }
  }

  // ---------------------------------------------------------------- live connection

  function setConn(kind, text) {
    const el = $("conn");
    el.dataset.state = kind;
    setText("conn-text", text || kind);
  }

  function onUpdate(message) {
    const s = message.status;
    if (state.started !== null && s.started !== state.started) {
      // The gateway restarted: its event count and history began anew.
      state.started = s.started;
      reload();
      return;
    }
    state.started = s.started;
    state.status = s;
    renderStatus(s);
    renderNodes(message.nodes, s);
    renderPacks(s.packs, s);
    addEvents(message.events);
    state.eventCount = Math.max(state.eventCount, s.events_count);
    if (appendHistory(message.history) || !state.drawnOnce) {
      state.drawnOnce = true;
      drawCharts();
    }
  }

  function connect() {
    if (state.source) state.source.close();
    const last = state.hist && state.hist.time.length ? state.hist.time[state.hist.time.length - 1] : "";
    // With web.reads_need_token the stream needs the token; EventSource cannot send headers.
    const auth = state.token ? `&access_token=${encodeURIComponent(state.token)}` : "";
    const source = new EventSource(`/api/stream?events=${state.eventCount}&history=${last}${auth}`);
    state.source = source;
    state.lastUpdate = Date.now();
    setConn("connecting");
    source.addEventListener("update", (m) => {
      state.lastUpdate = Date.now();
      setConn("live");
      onUpdate(JSON.parse(m.data));
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        setConn("down", "offline");
        setTimeout(() => { if (state.source === source) connect(); }, 3000);
      } else {
        setConn("reconnecting");
      }
    });
  }

  function watchdog() {
    const quiet = Date.now() - state.lastUpdate;
    if (quiet > RECONNECT_MS) connect();
    else if (quiet > STALE_MS && $("conn").dataset.state === "live") setConn("stale", `no data ${Math.round(quiet / 1000)} s`);
  }

  async function reload() {
    try {
      const [events, history, config] = await Promise.all([
        api("GET", "/api/events"), api("GET", "/api/history"), api("GET", "/api/config")]);
      $("event-rows").replaceChildren();
      state.lastSeq = 0;
      addEvents(events.events);
      state.eventCount = events.count;
      setHistory(history.columns);
      renderConfig(config);
    } catch (e) {
      toast(`Cannot reach the gateway: ${e.message}`, true);
      if (e.status === 401) openTokenDialog();  // web.reads_need_token: reading needs it too
    }
    connect();
  }

  // ---------------------------------------------------------------- start

  function start() {
    $("unlock").addEventListener("click", openTokenDialog);
    $("unlock-hint").addEventListener("click", openTokenDialog);
    $("token-form").addEventListener("submit", saveToken);
    $("token-cancel").addEventListener("click", () => $("token-dialog").close());
    $("token-forget").addEventListener("click", forgetToken);
    $("full-charge").addEventListener("click", () => act("/api/actions/full-charge", {},
      "Start a full charge now? The battery charges to its full-charge voltage and holds it to recalibrate SoC and balance."));
    $("soc-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const value = Number($("soc-input").value);
      act("/api/actions/soc", { soc: value });
    });
    $("config-form").addEventListener("submit", saveConfig);
    $("config-reset").addEventListener("click", () => renderConfig(state.config));
    for (const b of document.querySelectorAll(".seg button")) {
      b.addEventListener("click", () => {
        state.range = Number(b.dataset.range);
        for (const o of document.querySelectorAll(".seg button")) o.classList.toggle("on", o === b);
        drawCharts();
      });
    }
    state.charts = CHARTS.map(buildChart);
    let resizeTimer = 0;
    window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(drawCharts, 150); });
    setUnlocked(false);
    checkToken();
    setInterval(watchdog, 1000);
    reload();
  }

  start();
})();
